"""Runs several lifelong runs in lockstep, batching equal-shaped epochs into one vmapped call."""

from __future__ import annotations

import dataclasses
from collections.abc import Generator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec

from lasem_jax import interrupt, steps
from lasem_jax.model import Model

jitted_train_epoch = jax.jit(steps.train_epoch, static_argnums=(0, 1))


@dataclasses.dataclass(frozen=True)
class EpochRequest:
    """One epoch a run asks the driver to train (the arguments of `steps.train_epoch`)."""

    model: Model
    hp: steps.StepConfig
    state: steps.TrainState
    x: jax.Array
    y: jax.Array
    lr: float
    config: jax.Array

    def batch_key(self) -> tuple:
        """Requests with equal keys can share one vmapped call (the configuration may differ).

        The state's structure and shapes are part of it: a LASEM run's fine-tuning epoch uses
        the static step but keeps its `[C]` prior.
        """
        leaves, treedef = jax.tree.flatten(self.state)
        shapes = tuple(jnp.shape(leaf) for leaf in leaves)
        return (self.model, self.hp, self.lr, self.x.shape, self.y.shape, treedef, shapes)


EpochResult = tuple[steps.TrainState, dict[str, jax.Array]]
RunGenerator = Generator[EpochRequest, EpochResult, dict[str, Any]]


def _run_batched_epoch(
    model: Model,
    hp: steps.StepConfig,
    states: steps.TrainState,
    xs: jax.Array,
    ys: jax.Array,
    lr: jax.Array,
    configs: jax.Array,
) -> EpochResult:
    """`steps.train_epoch` over a leading run axis of `states`, `xs` `[R, N, ...]`, `ys`, `configs`.

    Runs may differ in seed, data and static configuration (`configs` `[R, L]`).
    """

    def one(state: steps.TrainState, x: jax.Array, y: jax.Array, c: jax.Array) -> EpochResult:
        return steps.train_epoch(model, hp, state, x, y, lr, c)

    return jax.vmap(one)(states, xs, ys, configs)


jitted_batched_epoch = jax.jit(_run_batched_epoch, static_argnums=(0, 1))


def run_mesh(num_devices: int = 0) -> jax.sharding.Mesh:
    """A 1-D mesh with axis `runs` over the first `num_devices` local devices (0: all).

    Raises:
      ValueError: more devices asked for than there are.
    """
    devices = jax.local_devices()
    if num_devices > len(devices):
        raise ValueError(
            f"config.train.num_devices={num_devices} but this process has {len(devices)} "
            f"device(s) ({devices[0].platform}); set --config.train.num_devices=0 for all."
        )
    return jax.sharding.Mesh(np.array(devices[: num_devices or len(devices)]), ("runs",))


def _train(
    requests: Sequence[EpochRequest], mesh: jax.sharding.Mesh | None = None
) -> list[EpochResult]:
    """Trains equal-keyed requests: one call, vmapped over the runs when there are several.

    The run axis is padded (with copies of the last run) to a multiple of the mesh's devices
    and sharded over them; the padding's results are dropped. Each result's dict gets
    `num_devices`, the number of devices the epoch was spread over.
    """
    r = requests[0]
    if len(requests) == 1 and r.hp.batch_devices > 1:  # One run, its minibatches split.
        devices = np.array(jax.local_devices()[: r.hp.batch_devices])
        whole = jax.sharding.NamedSharding(jax.sharding.Mesh(devices, ("b",)), PartitionSpec())
        args = jax.device_put((r.state, r.x, r.y, jnp.asarray(r.config)), whole)
        state, out = jax.device_get(jitted_train_epoch(r.model, r.hp, *args[:3], r.lr, args[3]))
        state = jax.tree_util.tree_map(jnp.asarray, state)  # Back on the default device.
        return [(state, {**out, "num_devices": r.hp.batch_devices})]
    if len(requests) == 1:
        state, out = jitted_train_epoch(r.model, r.hp, r.state, r.x, r.y, r.lr, r.config)
        return [(state, {**out, "num_devices": 1})]
    mesh = mesh or run_mesh()
    size = mesh.devices.size
    padded = [*requests, *[requests[-1]] * (-len(requests) % size)]
    sharding = jax.sharding.NamedSharding(mesh, PartitionSpec("runs"))

    def stack(*leaves: jax.Array) -> jax.Array:
        return jax.device_put(jnp.stack(leaves), sharding)

    states = jax.tree_util.tree_map(stack, *[q.state for q in padded])
    xs, ys = stack(*[q.x for q in padded]), stack(*[q.y for q in padded])
    configs = stack(*[jnp.asarray(q.config) for q in padded])
    batched = jitted_batched_epoch(r.model, r.hp, states, xs, ys, r.lr, configs)
    batched = jax.device_get(batched)  # One transfer; the runs continue from host copies.
    results = [
        jax.tree_util.tree_map(lambda a, k=k: jnp.asarray(a[k]), batched)
        for k in range(len(requests))
    ]
    return [(state, {**out, "num_devices": size}) for state, out in results]


def drive(
    runs: Sequence[RunGenerator], *, vmap: bool, num_devices: int = 0
) -> list[dict[str, Any]]:
    """Runs generators that yield `EpochRequest`s and return results, in lockstep.

    Each round, every unfinished run gets its pending epoch trained; with `vmap`, requests of
    the same model, step config, learning rate and data shapes (static configurations may
    differ) are trained as one vmapped computation with the run as a batch axis sharded over
    devices, the others one after another.

    Args:
      runs: started-or-not generators (e.g. `trainer.lifelong_run`).
      vmap: batch compatible requests; False trains every request on its own.
      num_devices: local devices the run axis is sharded over (0: all).

    Returns:
      Each generator's return value, in order.

    Raises:
      interrupt.Stopped: a stop was requested; every run stopped at its next epoch boundary.
    """
    results: list[dict[str, Any] | None] = [None] * len(runs)
    pending: dict[int, EpochRequest] = {}
    stopped: list[interrupt.Stopped] = []

    def advance(i: int, value: EpochResult | None) -> None:
        try:
            pending[i] = runs[i].send(value)
        except StopIteration as stop:
            results[i] = stop.value
            pending.pop(i, None)
        except interrupt.Stopped as stop:  # Let the other runs reach their checkpoint too.
            stopped.append(stop)
            pending.pop(i, None)

    mesh = run_mesh(num_devices)
    for i in range(len(runs)):
        advance(i, None)
    while pending:
        groups: dict[tuple, list[int]] = {}
        for i, request in pending.items():
            groups.setdefault(request.batch_key() if vmap else (i,), []).append(i)
        for members in groups.values():
            trained = _train([pending[i] for i in members], mesh)
            for i, result in zip(members, trained, strict=True):
                advance(i, result)
    if stopped:
        raise stopped[0]
    return results
