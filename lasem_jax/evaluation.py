"""Every seen task's validation and test accuracy in one jitted call per group of like tasks."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lasem_jax import steps
from lasem_jax.model import Model
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


@functools.partial(jax.jit, static_argnums=(0,), static_argnames=("chunks",))
def stack_accuracies(
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
        self._device = jax.devices()[0]

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
        test_above = test_above or {}
        # One placement for every call (runs trained on a mesh hand back committed arrays, a
        # run trained alone uncommitted ones): one compiled program, not one per mixture.
        shared, task_params = jax.device_put((shared, list(task_params)), self._device)
        out = np.full((sum(len(m) for _, m, _, _ in self._groups), 2), np.nan, np.float32)
        pending, wanted = [], set(which)
        for model, members, data, chunks in self._groups:
            picked = [pos for pos, i in enumerate(members) if i in wanted]
            if not picked:
                continue
            filler = task_params[members[picked[0]]]
            params = [task_params[i] if i < len(task_params) else filler for i in members]
            cfg = np.ones((len(members), model.num_layers), bool)
            for pos, i in enumerate(members):
                if i < len(configs):
                    cfg[pos] = np.asarray(configs[i], bool)
            order = np.zeros(len(members), np.int32)
            order[: len(picked)] = picked
            above = np.array([test_above.get(i, -np.inf) for i in members], np.float32)
            acc = stack_accuracies(
                model, shared, params, cfg, data, order, np.int32(len(picked)), above, chunks=chunks
            )
            pending.append((members, acc))
        for members, acc in jax.device_get(pending):
            out[members] = acc
        return out
