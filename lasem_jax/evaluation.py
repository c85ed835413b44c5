"""Every seen task's validation and test accuracy in one jitted call per group of like tasks."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lasem_jax.model import Model
from lasem_jax.task import Task

Array = jax.Array
SPLITS = ("val", "test")


class TaskStack(NamedTuple):
    """The validation and test sets of a group of tasks, on the device.

    Each task's validation rows come first, then its test rows, then padding up to a common
    multiple of the chunk, so padding is spent once per task rather than once per split.

    Attributes:
      x: `[T, N, H, W, C]` images.
      y: `[T, N]` labels.
      split: `[T, N]` int32: 0 validation, 1 test, -1 padding.
      count: `[T, 2]` number of images of each split.
    """

    x: Array
    y: Array
    split: Array
    count: Array


def stack_tasks(tasks: Sequence[Task], chunk: int) -> TaskStack:
    """Stacks the tasks' validation and test rows, padding each task to a multiple of `chunk`."""
    count = np.array([[len(getattr(t, f"y_{s}")) for s in SPLITS] for t in tasks], np.int32)
    n = -(-int(count.sum(axis=1).max()) // chunk) * chunk
    x = np.zeros((len(tasks), n, *tasks[0].x_val.shape[1:]), np.float32)
    y = np.zeros((len(tasks), n), np.int32)
    split = np.full((len(tasks), n), -1, np.int32)
    for i, task in enumerate(tasks):
        start = 0
        for j, name in enumerate(SPLITS):
            end = start + count[i, j]
            x[i, start:end] = getattr(task, f"x_{name}")
            y[i, start:end] = getattr(task, f"y_{name}")
            split[i, start:end] = j
            start = end
    return TaskStack(jnp.asarray(x), jnp.asarray(y), jnp.asarray(split), jnp.asarray(count))


@functools.partial(jax.jit, static_argnums=(0,), static_argnames=("chunk",))
def stack_accuracies(
    model: Model,
    shared: dict,
    task_params: Sequence[dict],
    configs: Array,
    data: TaskStack,
    order: Array,
    num: Array,
    *,
    chunk: int,
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
      chunk: images per forward pass.

    Returns:
      `[T, 2]` validation and test accuracy per task; NaN for tasks not evaluated.
    """
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *task_params)
    num_tasks = data.y.shape[0]
    splits = jnp.arange(len(SPLITS), dtype=jnp.int32)

    def one(i: int, acc: Array) -> Array:
        k = order[i]
        params = {"shared": shared, "task": jax.tree.map(lambda leaf: leaf[k], stacked)}
        xs = data.x[k].reshape(-1, chunk, *data.x.shape[2:])
        ys, ss = data.y[k].reshape(-1, chunk), data.split[k].reshape(-1, chunk)

        def correct(batch: tuple[Array, Array, Array]) -> Array:
            xb, yb, sb = batch
            hit = jnp.argmax(model.apply_config(params, xb, configs[k]), axis=-1) == yb
            return jnp.sum(hit[:, None] & (sb[:, None] == splits), axis=0)

        hits = jax.lax.map(correct, (xs, ys, ss)).sum(axis=0)
        return acc.at[k].set(hits / data.count[k])

    init = jnp.full((num_tasks, len(SPLITS)), jnp.nan, jnp.float32)
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
        largest = max(len(t.y_val) + len(t.y_test) for t in tasks)
        self._chunk = min(int(chunk), -(-largest // 8) * 8)  # No chunk wider than any task.
        self._groups = [
            (key[0], members, stack_tasks([tasks[i] for i in members], self._chunk))
            for key, members in keys.items()
        ]

    def accuracies(
        self,
        shared: dict,
        task_params: Sequence[Any],
        configs: Sequence[Any],
        which: Sequence[int],
    ) -> np.ndarray:
        """Accuracies `[T, 2]` (validation, test) of tasks `which`, NaN for the others.

        Args:
          shared: the shared parameters every task is evaluated with.
          task_params: task-parameter trees of tasks `0..len(task_params)-1`.
          configs: `[L]` bool configuration of each of those tasks.
          which: the task indices to evaluate (each below `len(task_params)`).
        """
        out = np.full((sum(len(m) for _, m, _ in self._groups), 2), np.nan, np.float32)
        pending, wanted = [], set(which)
        for model, members, data in self._groups:
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
            acc = stack_accuracies(
                model, shared, params, cfg, data, order, np.int32(len(picked)), chunk=self._chunk
            )
            pending.append((members, acc))
        for members, acc in jax.device_get(pending):
            out[members] = acc
        return out
