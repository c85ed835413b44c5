"""How many runs one batched call may train: a configured cap, or what fits in device memory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec

MEMORY_FRACTION = 0.8  # of a device's memory that one batched call may plan to use
UNLIMITED = 1 << 30


def device_memory(device: jax.Device) -> int | None:
    """Bytes of memory `device` offers (None where the backend does not say, e.g. CPUs)."""
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    return int(stats["bytes_limit"]) if stats and "bytes_limit" in stats else None


def runs_per_call(
    requests: Sequence[Any], mesh: jax.sharding.Mesh, limit: int, epoch: Callable[..., Any]
) -> int:
    """How many of these equal-keyed runs (`lockstep.EpochRequest`s) one batched call may train.

    `limit` (`config.train.max_batched_runs`) if positive; else as many as fit in
    `MEMORY_FRACTION` of a device's memory, measured on the compiled batched epoch of all of
    them (XLA's memory analysis per device: arguments, outputs and temporaries); no limit
    where the device does not report its memory (CPUs).

    Args:
      requests: the runs' pending epochs (equal batch keys, at least two).
      mesh: the run mesh.
      limit: `config.train.max_batched_runs`.
      epoch: `lockstep.sharded_epoch`, whose program is measured.

    Raises:
      ValueError: not even one run per device fits (names the fields that shrink a run).
    """
    if limit > 0:
        return limit
    memory = device_memory(mesh.devices.flat[0])
    if memory is None:
        return UNLIMITED
    r, size = requests[0], mesh.devices.size
    count = -(-len(requests) // size) * size
    sharding = None if size == 1 else jax.sharding.NamedSharding(mesh, PartitionSpec("runs"))

    def stacked(a: Any) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((count, *jnp.shape(a)), jnp.result_type(a), sharding=sharding)

    args = jax.tree.map(stacked, (r.state, r.x, r.y))
    cfg = stacked(jnp.asarray(r.config))
    ns = None if r.n is None else stacked(jnp.int32(r.n))
    lowered = epoch(r.model, r.hp, mesh).lower(*args, jnp.float32(r.lr), cfg, ns)
    m = lowered.compile().memory_analysis()
    used = m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
    per_run = max(1, used - m.alias_size_in_bytes) / (count // size)
    fit = int(MEMORY_FRACTION * memory // per_run)
    if fit < 1:
        raise ValueError(
            f"One run's batched epoch needs {per_run / 2**30:.2f} GiB of the "
            f"{memory / 2**30:.2f} GiB of {mesh.devices.flat[0]}: set "
            "config.train.max_batched_runs=1 to train runs one at a time, or lower "
            "config.train.batch_size or config.model.width."
        )
    return fit * size


def split_calls(
    groups: dict[tuple, list[int]],
    pending: dict[int, Any],
    mesh: jax.sharding.Mesh,
    max_runs: int,
    caps: dict[tuple, int],
    epoch: Callable[..., Any],
) -> list[tuple[tuple, list[int]]]:
    """Groups of equal-keyed runs split into calls of at most `runs_per_call` runs each.

    Args:
      groups: batch key -> the indices of the runs whose pending requests share it.
      pending: run index -> its `lockstep.EpochRequest`.
      mesh: the run mesh.
      max_runs: `config.train.max_batched_runs` (0: what fits in memory).
      caps: batch key -> runs per call, measured once per key (filled here).
      epoch: `lockstep.sharded_epoch`.

    Returns:
      `(key, run indices)` per call.
    """
    calls = []
    for key, members in groups.items():
        if len(members) == 1:
            calls.append((key, members))
            continue
        if key not in caps:
            caps[key] = runs_per_call([pending[i] for i in members], mesh, max_runs, epoch)
        cap = caps[key]
        calls.extend((key, members[i : i + cap]) for i in range(0, len(members), cap))
    return calls
