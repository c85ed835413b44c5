"""Every seen task's validation and test accuracy in one jitted call per group of like tasks."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lasem_jax.engine import steps
from lasem_jax.networks.model import Model
from lasem_jax.task import Task

Array = jax.Array
SPLITS = ("val", "test")


class Split(NamedTuple):
    """One split (validation or test) of a group of tasks, on the device.

    Each task's rows are padded to a common length, a whole number of chunks.

    Attributes:
      x: `[T, N, H, W, C]` images.
      y: `[T, N]` labels, -1 at padding.
      count: `[T]` int32 number of real rows of each task (the rest is padding).
    """

    x: Array
    y: Array
    count: Array


class TaskStack(NamedTuple):
    """The validation and test splits of a group of tasks (`Split`s)."""

    val: Split
    test: Split


def split_chunk(longest: int, chunk: int) -> int:
    """The forward-pass size for a split of at most `longest` rows and at most `chunk` per pass.

    The passes stay as few as `chunk` allows and split the rows evenly, so padding is below
    one row per pass (e.g. 600 test rows with `chunk=256`: 3 passes of 200, not 768 rows).
    """
    passes = -(-longest // chunk)
    return -(-longest // passes)


def stack_split(tasks: Sequence[Task], name: str, chunk: int) -> Split:
    """Stacks split `name` of `tasks`, padding each task to a multiple of `chunk` rows."""
    count = np.array([len(getattr(t, f"y_{name}")) for t in tasks], np.int32)
    n = -(-int(count.max()) // chunk) * chunk
    x = np.zeros((len(tasks), n, *getattr(tasks[0], f"x_{name}").shape[1:]), np.float32)
    y = np.full((len(tasks), n), -1, np.int32)  # -1: padding, never counted.
    for i, task in enumerate(tasks):
        x[i, : count[i]] = getattr(task, f"x_{name}")
        y[i, : count[i]] = getattr(task, f"y_{name}")
    return Split(jnp.asarray(x), jnp.asarray(y), jnp.asarray(count))


def split_accuracy(
    model: Model, params: dict, config: Array, data: Split, k: Array, chunk: int
) -> Array:
    """Accuracy (scalar float32) of task `k` of a stacked split, `chunk` images per pass."""
    xs = data.x[k].reshape(-1, chunk, *data.x.shape[2:])
    ys = data.y[k].reshape(-1, chunk)
    hits = steps.count_correct(lambda xb: model.apply_config(params, xb, config), xs, ys)
    return hits / data.count[k]


def _stack_accuracies(
    model: Model,
    shared: dict,
    task_params: Sequence[dict],
    configs: Array,
    data: TaskStack,
    order: Array,
    num: Array,
    test_above: Array,
    *,
    chunks: tuple[int, int],
) -> Array:
    """Accuracies of tasks `order[:num]` of a stack, in a loop inside one program.

    Args:
      model: the tasks' model (static).
      shared: shared parameters every task is evaluated with.
      task_params: one task-parameter tree per task of the stack (entries of tasks not
        evaluated only give the structure).
      configs: `[T, L]` bool configuration of each task.
      data: the stacked splits.
      order: `[T]` int32 positions in the stack; the first `num` are evaluated.
      num: scalar int32.
      test_above: `[T]` float32: a task's test split is evaluated only if its validation
        accuracy is above this (`-inf`: always).
      chunks: images per forward pass of the validation and the test split.

    Returns:
      `[T, 2]` validation and test accuracy per task; NaN for tasks (or test splits) not
      evaluated.
    """
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *task_params)
    nan = jnp.float32(jnp.nan)

    def one(i: int, acc: Array) -> Array:
        k = order[i]
        params = {"shared": shared, "task": jax.tree.map(lambda leaf: leaf[k], stacked)}
        val = split_accuracy(model, params, configs[k], data.val, k, chunks[0])
        test = jax.lax.cond(
            val > test_above[k],
            lambda: split_accuracy(model, params, configs[k], data.test, k, chunks[1]),
            lambda: nan,
        )
        return acc.at[k].set(jnp.stack([val, test]))

    init = jnp.full((data.val.y.shape[0], len(SPLITS)), nan, jnp.float32)
    return jax.lax.fori_loop(0, num, one, init)


stack_accuracies = jax.jit(_stack_accuracies, static_argnums=(0,), static_argnames=("chunks",))


@functools.partial(jax.jit, static_argnums=(0,), static_argnames=("chunks", "in_turn"))
def runs_accuracies(
    model: Model,
    shared: dict,
    task_params: Sequence[dict],
    configs: Array,
    data: TaskStack,
    order: Array,
    num: Array,
    test_above: Array,
    *,
    chunks: tuple[int, int],
    in_turn: bool,
) -> Array:
    """`stack_accuracies` of several runs in one call: every argument has a leading run axis.

    The runs are vmapped, or with `in_turn` (CPU) evaluated one after another inside the program
    (`lax.map`). Returns `[R, T, 2]`.
    """

    def one(args: tuple) -> Array:
        return _stack_accuracies(model, *args, chunks=chunks)

    args = (shared, task_params, configs, data, order, num, test_above)
    return jax.lax.map(one, args) if in_turn else jax.vmap(lambda *a: one(a))(*args)


Call = tuple  # (model, members, data, chunks, (shared, params, configs, order, num, above))


@dataclasses.dataclass(frozen=True, eq=False)
class EvalRequest:
    """One run's evaluation (`Evaluator.request`), which a driver may batch with other runs'.

    Attributes:
      evaluator: the run's evaluator.
      calls: its `stack_accuracies` calls, one per group of tasks evaluated.
    """

    evaluator: Evaluator
    calls: tuple[Call, ...]

    def batch_key(self) -> tuple | None:
        """Requests with equal keys can be evaluated in one call (None: not batchable)."""
        if len(self.calls) != 1 or self.evaluator.num_groups != 1:
            return None
        model, _, data, chunks, args = self.calls[0]
        leaves, treedef = jax.tree.flatten((data, args[:3]))
        return (EvalRequest, model, chunks, treedef, tuple(jnp.shape(a) for a in leaves))

    def run(self) -> np.ndarray:
        """The accuracies `[T, 2]` of this request alone (`Evaluator.accuracies`)."""
        return self.evaluator.run(self.calls)

    def start(self) -> Callable[[], np.ndarray]:
        """Dispatches this request alone; the returned function reads `run`'s accuracies.

        Nothing waits until that function is called, so a caller can queue more work first.
        """
        pending = self.evaluator.dispatch(self.calls)
        return lambda: self.evaluator.collect(pending)


class StackedData:
    """The evaluation data of batches of runs, stacked once per batch (kept by a driver).

    `get` returns a batch's stacked `TaskStack`s, stacking them on first use; `prune` drops the
    batches not used since the last `prune` (runs that finished or moved to other batches).
    """

    def __init__(self) -> None:
        self._kept: dict[tuple, tuple[tuple, TaskStack]] = {}
        self._used: set[tuple] = set()

    def get(self, requests: Sequence[EvalRequest]) -> TaskStack:
        """The stacked evaluation data of these runs' requests (equal batch keys)."""
        evaluators = tuple(q.evaluator for q in requests)
        key = tuple(map(id, evaluators))
        entry = self._kept.get(key)
        if entry is None or any(a is not b for a, b in zip(entry[0], evaluators, strict=True)):
            entry = (evaluators, _stack(*[q.calls[0][2] for q in requests]))
            self._kept[key] = entry
        self._used.add(key)
        return entry[1]

    def prune(self) -> None:
        """Forgets the batches not used since the last call."""
        self._kept = {k: v for k, v in self._kept.items() if k in self._used}
        self._used = set()


def evaluate_runs(
    requests: Sequence[EvalRequest], data: StackedData, in_turn: bool
) -> list[Callable[[], np.ndarray]]:
    """The accuracies of equal-keyed requests of several runs, in one call and one transfer.

    Args:
      requests: the runs' requests (equal `batch_key`s, not None).
      data: the stacked evaluation data of batches of runs (kept by the caller, so a batch
        of runs stacks its data once, not per call).
      in_turn: evaluate the runs one after another inside the program (CPU).

    Returns:
      Each request's reader of its accuracies `[T, 2]` (as `EvalRequest.start`): the call is
      dispatched, and the first reader to be called transfers every run's accuracies.
    """
    calls = [q.calls[0] for q in requests]
    model, members, _, chunks, _ = calls[0]
    args = _stack(*[call[4] for call in calls])
    acc = runs_accuracies(
        model, *args[:3], data.get(requests), *args[3:], chunks=chunks, in_turn=in_turn
    )
    fetch = functools.cache(lambda: jax.device_get(acc))

    def reader(k: int, q: EvalRequest) -> Callable[[], np.ndarray]:
        def read() -> np.ndarray:
            full = np.full((q.evaluator.num_tasks, len(SPLITS)), np.nan, np.float32)
            full[members] = fetch()[k]
            return full

        return read

    return [reader(k, q) for k, q in enumerate(requests)]


@jax.jit
def _stack(*trees: Any) -> Any:
    """Trees of equal structure stacked along a new leading (run) axis, in one call."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


class Evaluator:
    """Evaluates a run's tasks, grouped by model and image shape, one call per group.

    Tasks of a group share one compiled program for the whole run; the per-epoch cost is one
    call and one host transfer per group (usually one group).
    """

    def __init__(self, models: Sequence[Model], tasks: Sequence[Task], chunk: int) -> None:
        keys: dict[tuple, list[int]] = {}
        for i, (model, task) in enumerate(zip(models, tasks, strict=True)):
            keys.setdefault((model, task.x_val.shape[1:]), []).append(i)
        self._groups = []
        for (model, _), members in keys.items():
            group = [tasks[i] for i in members]
            chunks = tuple(
                split_chunk(max(len(getattr(t, f"y_{s}")) for t in group), int(chunk))
                for s in SPLITS
            )
            data = TaskStack(
                *(stack_split(group, s, c) for s, c in zip(SPLITS, chunks, strict=True))
            )
            self._groups.append((model, members, data, chunks))
        self._device = jax.local_devices()[0]

    @property
    def num_tasks(self) -> int:
        """Number of tasks `T` of the run."""
        return sum(len(members) for _, members, _, _ in self._groups)

    @property
    def num_groups(self) -> int:
        """Number of groups of like tasks (one compiled evaluation each)."""
        return len(self._groups)

    def accuracies(
        self,
        shared: dict,
        task_params: Sequence[Any],
        configs: Sequence[Any],
        which: Sequence[int],
        test_above: Mapping[int, float] | None = None,
    ) -> np.ndarray:
        """Accuracies `[T, 2]` (validation, test) of tasks `which`, NaN for the others.

        Args:
          shared: the shared parameters every task is evaluated with.
          task_params: task-parameter trees of tasks `0..len(task_params)-1`.
          configs: `[L]` bool configuration of each of those tasks.
          which: the task indices to evaluate (each below `len(task_params)`).
          test_above: optional `{task index: accuracy}`: that task's test accuracy is
            computed only if its validation accuracy is above the value (NaN otherwise);
            other tasks always get both.
        """
        return self.run(self.request(shared, task_params, configs, which, test_above).calls)

    def request(
        self,
        shared: dict,
        task_params: Sequence[Any],
        configs: Sequence[Any],
        which: Sequence[int],
        test_above: Mapping[int, float] | None = None,
    ) -> EvalRequest:
        """`accuracies`'s work as an `EvalRequest` (arguments as there), for a driver."""
        test_above = test_above or {}
        # One placement for every call (runs trained on a mesh hand back committed arrays, a
        # run trained alone uncommitted ones): one compiled program, not one per mixture.
        shared, task_params = jax.device_put((shared, list(task_params)), self._device)
        calls, wanted = [], set(which)
        for model, members, data, chunks in self._groups:
            picked = [pos for pos, i in enumerate(members) if i in wanted]
            if not picked:
                continue
            filler = task_params[members[picked[0]]]
            params = [task_params[i] if i < len(task_params) else filler for i in members]
            cfg = np.ones((len(members), model.num_layers), bool)
            on_device = {}  # a configuration still being computed is not waited for
            for pos, i in enumerate(members):
                if i < len(configs) and isinstance(configs[i], jax.Array):
                    on_device[pos] = configs[i]
                elif i < len(configs):
                    cfg[pos] = np.asarray(configs[i], bool)
            if on_device:
                cfg = jnp.asarray(cfg)
                for pos, row in on_device.items():
                    cfg = cfg.at[pos].set(row)
            order = np.zeros(len(members), np.int32)
            order[: len(picked)] = picked
            above = np.array([test_above.get(i, -np.inf) for i in members], np.float32)
            args = (shared, params, cfg, order, np.int32(len(picked)), above)
            calls.append((model, members, data, chunks, args))
        return EvalRequest(self, tuple(calls))

    def run(self, calls: Sequence[Call]) -> np.ndarray:
        """Runs `calls` (of `request`): accuracies `[T, 2]`, one host transfer."""
        return self.collect(self.dispatch(calls))

    def dispatch(self, calls: Sequence[Call]) -> list[tuple[list[int], Array]]:
        """Dispatches `calls` without waiting: each group's members and accuracies (device)."""
        return [
            (members, stack_accuracies(model, *args[:3], data, *args[3:], chunks=chunks))
            for model, members, data, chunks, args in calls
        ]

    def collect(self, pending: Sequence[tuple[list[int], Array]]) -> np.ndarray:
        """The accuracies `[T, 2]` of dispatched calls (`dispatch`), one host transfer."""
        out = np.full((self.num_tasks, len(SPLITS)), np.nan, np.float32)
        for members, acc in jax.device_get(pending):
            out[members] = acc
        return out
