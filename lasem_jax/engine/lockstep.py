"""Runs lifelong runs in lockstep: equal-shaped epochs as one call, each device its own runs."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec

from lasem_jax import interrupt
from lasem_jax.engine import batch_memory, evaluation, steps
from lasem_jax.networks.model import Model

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
    n: int | None = None  # the task's examples, the first `n` of `x` (padded); None: all

    def batch_key(self) -> tuple:
        """Requests with equal keys can share one vmapped call (the configuration may differ).

        The state's structure and shapes are part of it: a LASEM run's fine-tuning epoch uses
        the static step but keeps its `[C]` prior.
        """
        leaves, treedef = jax.tree.flatten(self.state)
        shapes = tuple(jnp.shape(leaf) for leaf in leaves)
        padded = self.n is not None
        return (self.model, self.hp, self.lr, self.x.shape, self.y.shape, padded, treedef, shapes)

    def trim(self, stats: dict[str, Any]) -> dict[str, Any]:
        """`stats` with the losses of a padded epoch's steps cut to this task's own steps."""
        if self.n is None:
            return stats
        return {**stats, "losses": stats["losses"][: self.n // self.hp.batch_size]}


EpochResult = tuple[steps.TrainState, dict[str, jax.Array]]
RunGenerator = Generator[EpochRequest | evaluation.EvalRequest, Any, dict[str, Any]]


def _run_batched_epoch(
    model: Model,
    hp: steps.StepConfig,
    states: steps.TrainState,
    xs: jax.Array,
    ys: jax.Array,
    lr: jax.Array,
    configs: jax.Array,
    ns: jax.Array | None,
    *,
    in_turn: bool = False,
) -> EpochResult:
    """`steps.train_epoch` over a leading run axis of `states`, `xs` `[R, N, ...]`, `ys`, `configs`.

    `ns` `[R]`: each run's examples in its padded `xs` (None: unpadded).

    Runs may differ in seed, data and static configuration (`configs` `[R, L]`). The runs are
    vmapped (one wide computation: what fills an accelerator), or with `in_turn` trained one
    after another inside the program (`lax.map`: on a CPU core the vmapped per-run kernels
    become grouped convolutions, slower than each run's own).
    """

    def one(args: tuple) -> EpochResult:
        state, x, y, c, n = args
        return steps.train_epoch(model, hp, state, x, y, lr, c, n)

    args = (states, xs, ys, configs, ns)
    return jax.lax.map(one, args) if in_turn else jax.vmap(lambda *a: one(a))(*args)


@functools.cache
def sharded_epoch(model: Model, hp: steps.StepConfig, mesh: jax.sharding.Mesh) -> Any:
    """The jitted batched epoch with the run axis split over `mesh`'s devices (`shard_map`).

    Each device trains only its own runs (a vmap over its block of the run axis; on CPU devices
    a `lax.map`, see `_run_batched_epoch`): the program holds no collective. The stacked state
    (argument 0) is donated. Called as `fn(states, xs, ys, lr, configs, ns)`, the run axis a
    multiple of the mesh's size. On a one-device mesh it is the plain batched epoch (no
    sharding, so the runs' arrays stay
    uncommitted like those of a run trained alone, and share its compiled evaluation).
    """
    runs, replicated = PartitionSpec("runs"), PartitionSpec()
    in_turn = mesh.devices.flat[0].platform == "cpu"
    local = functools.partial(_run_batched_epoch, model, hp, in_turn=in_turn)
    if mesh.devices.size == 1:
        return jax.jit(local, donate_argnums=0)
    mapped = jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(runs, runs, runs, replicated, runs, runs),
        out_specs=(runs, runs),
    )
    return jax.jit(mapped, donate_argnums=0)


def jitted_batched_epoch(
    model: Model,
    hp: steps.StepConfig,
    mesh: jax.sharding.Mesh,
    states: steps.TrainState,
    xs: jax.Array,
    ys: jax.Array,
    lr: float,
    configs: jax.Array,
    ns: jax.Array | None = None,
) -> EpochResult:
    """One batched epoch of stacked runs on `mesh` (`sharded_epoch`); `states` is donated."""
    return sharded_epoch(model, hp, mesh)(states, xs, ys, jnp.float32(lr), configs, ns)


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


@jax.jit
def _stack(*trees: Any) -> Any:
    """Trees of equal structure stacked along a new leading axis (one call for all leaves)."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


@jax.jit
def _pick(tree: Any, i: jax.Array) -> Any:
    """Entry `i` of every leaf of a stacked tree (one call, compiled once per structure)."""
    return jax.tree.map(lambda leaf: leaf[i], tree)


def _to_mesh(trees: Sequence[Any], mesh: jax.sharding.Mesh) -> Any:
    """`trees` stacked and split over `mesh` along the run axis, without leaving the devices."""
    if mesh.devices.size == 1:
        return _stack(*trees)
    home = mesh.devices.flat[0]
    stacked = _stack(*jax.device_put(list(trees), home))
    return jax.device_put(stacked, jax.sharding.NamedSharding(mesh, PartitionSpec("runs")))


def _from_mesh(stacked: Any, mesh: jax.sharding.Mesh, count: int) -> list[Any]:
    """The trees of the first `count` runs of a stacked, run-sharded tree, on the devices.

    One call per run; with several devices the runs' trees are gathered on the mesh's first
    device, where the rest of a run (evaluation, consolidation) computes.
    """
    if mesh.devices.size == 1:
        return [_pick(stacked, np.int32(k)) for k in range(count)]
    leaves, treedef = jax.tree.flatten(stacked)
    blocks = []  # each device's block of runs, as plain single-device arrays
    for d in range(mesh.devices.size):
        shards = [sorted(a.addressable_shards, key=lambda s: s.index[0].start or 0) for a in leaves]
        blocks.append(jax.tree.unflatten(treedef, [jax.device_put(sh[d].data) for sh in shards]))
    home, per_device = mesh.devices.flat[0], jax.tree.leaves(blocks[0])[0].shape[0]
    return [
        jax.device_put(_pick(blocks[k // per_device], np.int32(k % per_device)), home)
        for k in range(count)
    ]


@dataclasses.dataclass
class _Resident:
    """A batch of runs kept on the mesh between epochs.

    Attributes:
      states: the stacked, run-sharded train states after the last epoch (donated next call).
      data: the stacked `(xs, ys)` training sets.
      handed: each run's state as handed out after the last epoch (padding excluded): if the
        runs' next requests carry exactly these objects, `states` is trained on without
        re-stacking.
      sources: each run's `(x, y)` objects that `data` was stacked from.
    """

    states: Any
    data: tuple[jax.Array, jax.Array]
    handed: list[Any]
    sources: list[tuple[Any, Any]]


class _Stats(Mapping):
    """One run's statistics of a batched epoch, read from the device when first used.

    Every run's statistics come in one transfer (`fetch`), made by the first run that reads.
    """

    def __init__(self, fetch: Callable[[], dict], k: int, request: EpochRequest, size: int):
        self._fetch, self._k, self._request, self._size = fetch, k, request, size
        self._read: dict[str, Any] | None = None

    def _values(self) -> dict[str, Any]:
        if self._read is None:
            mine = {name: v[self._k] for name, v in self._fetch().items()}
            self._read = {**self._request.trim(mine), "num_devices": self._size}
        return self._read

    def __getitem__(self, name: str) -> Any:
        return self._values()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values())

    def __len__(self) -> int:
        return len(self._values())


def _train_single(r: EpochRequest) -> EpochResult:
    """One run's epoch on its own (its minibatches split over devices with `batch_devices`).

    The statistics are device arrays still being computed (a pipelined run reads them after
    requesting its next epoch).
    """
    if r.hp.batch_devices > 1:
        devices = np.array(jax.local_devices()[: r.hp.batch_devices])
        whole = jax.sharding.NamedSharding(jax.sharding.Mesh(devices, ("b",)), PartitionSpec())
        args = jax.device_put((r.state, r.x, r.y, jnp.asarray(r.config)), whole)
        epoch = jitted_train_epoch(r.model, r.hp, *args[:3], r.lr, args[3], r.n)
        state, out = jax.device_get(epoch)
        state = jax.tree_util.tree_map(jnp.asarray, state)  # Back on the default device.
        return state, {**r.trim(out), "num_devices": r.hp.batch_devices}
    state, out = jitted_train_epoch(r.model, r.hp, r.state, r.x, r.y, r.lr, r.config, r.n)
    return state, {**r.trim(out), "num_devices": 1}  # Not waited for: the caller reads it.


def _train(
    requests: Sequence[EpochRequest],
    mesh: jax.sharding.Mesh | None = None,
    resident: _Resident | None = None,
) -> tuple[list[EpochResult], _Resident | None]:
    """Trains equal-keyed requests: one call, vmapped over the runs when there are several.

    The run axis is padded (with copies of the last run) to a multiple of the mesh's devices
    and sharded over them; the padding's results are dropped. The stacked states and data stay
    on the mesh (`resident`, returned for the next call): they are re-stacked only when a run
    brings other state or data than it was handed. The host receives the epoch's statistics
    in one transfer, when a run first reads them (nothing waits before). Each result's
    statistics hold `num_devices`, the devices the epoch used.

    Returns:
      Each request's `(state, statistics)`, and the resident batch (None for a single run).
    """
    r = requests[0]
    if len(requests) == 1:
        return [_train_single(r)], None
    mesh = mesh or run_mesh()
    size = mesh.devices.size
    padded = [*requests, *[requests[-1]] * (-len(requests) % size)]
    sources = [(q.x, q.y) for q in padded]
    if resident is None or any(
        a is not x or b is not y for (a, b), (x, y) in zip(resident.sources, sources, strict=True)
    ):
        data = (_to_mesh([q.x for q in padded], mesh), _to_mesh([q.y for q in padded], mesh))
    else:
        data = resident.data
    if resident is None or any(
        q.state is not h for q, h in zip(requests, resident.handed, strict=True)
    ):
        states = _to_mesh([q.state for q in padded], mesh)
    else:
        states = resident.states
    configs = _to_mesh([jnp.asarray(q.config) for q in padded], mesh)
    ns = None if r.n is None else _to_mesh([jnp.int32(q.n) for q in padded], mesh)
    states, out = jitted_batched_epoch(r.model, r.hp, mesh, states, *data, r.lr, configs, ns)
    handed = _from_mesh(states, mesh, len(requests))
    fetch = functools.cache(lambda: jax.device_get(out))  # One transfer, when first read.
    results = [(handed[k], _Stats(fetch, k, q, size)) for k, q in enumerate(requests)]
    return results, _Resident(states, data, handed, sources)


def drive(
    runs: Sequence[RunGenerator],
    *,
    vmap: bool,
    num_devices: int = 0,
    max_runs: int = 0,
    batch_evaluations: bool | None = None,
) -> list[dict[str, Any]]:
    """Runs generators that yield `EpochRequest`s and return results, in lockstep.

    Each round, every unfinished run gets its pending request served: an `EpochRequest`
    trained, an `evaluation.EvalRequest` evaluated. With `vmap`, epochs of the same model, step
    config, learning rate and data shapes (static configurations may differ) train as one call
    with the run as a batch axis sharded over devices, and evaluations of like runs run as one
    call too (`evaluation.evaluate_runs`); the others one after another.

    Args:
      runs: started-or-not generators (e.g. `trainer.lifelong_run`).
      vmap: batch compatible requests; False trains every request on its own.
      num_devices: local devices the run axis is sharded over (0: all).
      max_runs: most runs one call batches (`config.train.max_batched_runs`); 0: as many as
        fit in the device's memory (`batch_memory.runs_per_call`).
      batch_evaluations: evaluate like runs in one call (with `vmap`). None: on accelerators
        only; on CPU devices one call evaluates the runs in turn, no faster than separate
        calls, and costs one more compilation.

    Returns:
      Each generator's return value, in order.

    Raises:
      interrupt.Stopped: a stop was requested; every run stopped at its next epoch boundary.
    """
    results: list[dict[str, Any] | None] = [None] * len(runs)
    pending: dict[int, EpochRequest | evaluation.EvalRequest] = {}
    stopped: list[interrupt.Stopped] = []

    def advance(i: int, value: Any) -> None:
        try:
            pending[i] = runs[i].send(value)
        except StopIteration as stop:
            results[i] = stop.value
            pending.pop(i, None)
        except interrupt.Stopped as stop:  # Let the other runs reach their checkpoint too.
            stopped.append(stop)
            pending.pop(i, None)

    mesh = run_mesh(num_devices)
    in_turn = mesh.devices.flat[0].platform == "cpu"
    batch_evaluations = not in_turn if batch_evaluations is None else batch_evaluations
    resident: dict[tuple, _Resident] = {}
    eval_data = evaluation.StackedData()
    caps: dict[tuple, int] = {}
    for i in range(len(runs)):
        advance(i, None)
    while pending:
        now = dict(pending)
        groups: dict[tuple, list[int]] = {}
        for i, request in now.items():
            alone = not vmap or (
                isinstance(request, evaluation.EvalRequest) and not batch_evaluations
            )
            key = None if alone else request.batch_key()
            groups.setdefault(("alone", i) if key is None else key, []).append(i)
        evals = {k: m for k, m in groups.items() if isinstance(now[m[0]], evaluation.EvalRequest)}
        if evals:
            for members in evals.values():
                requests = [now[i] for i in members]
                if len(requests) == 1:
                    readers = [requests[0].start()]
                else:
                    readers = evaluation.evaluate_runs(requests, eval_data, in_turn)
                for i, read in zip(members, readers, strict=True):
                    advance(i, read)
            eval_data.prune()  # the stacked data of batches no longer evaluated goes
        epochs = {k: m for k, m in groups.items() if k not in evals}
        trained_now, kept = set(), {}
        calls = batch_memory.split_calls(epochs, now, mesh, max_runs, caps, sharded_epoch)
        for key, members in calls:
            batch = (key, tuple(members))
            trained, kept[batch] = _train([now[i] for i in members], mesh, resident.get(batch))
            trained_now.update(members)
            for i, result in zip(members, trained, strict=True):
                advance(i, result)
        resident = {  # batches waiting on their evaluation keep their states on the device
            batch: r
            for batch, r in resident.items()
            if not trained_now & set(batch[1]) and all(i in pending for i in batch[1])
        }
        resident.update((batch, r) for batch, r in kept.items() if r is not None)
    if stopped:
        raise stopped[0]
    return results
