"""Pieces every lifelong training loop shares: learning rate, data upload, checks, results."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lasem_jax.config import defaults
from lasem_jax.core import metrics
from lasem_jax.core.frozen import RunConfig
from lasem_jax.native import conv as native_conv
from lasem_jax.storage import results_io
from lasem_jax.task import Task


def learning_rate(config: RunConfig, global_epoch: int) -> float:
    """`lr0 / (1 + global_epoch * decay)`: the reference code's schedule, global over tasks."""
    return config.optim.lr / (1.0 + global_epoch * config.optim.lr_decay)


def precision_of(config: RunConfig) -> str:
    """`config.train.matmul_precision`, or the default "highest" where the config lacks it.

    Configs built by hand or saved before the field existed have no `train.matmul_precision`.
    """
    default = defaults.frozen_default().train.matmul_precision
    return str(config.train.get("matmul_precision", default))


def matmul_precision(config: RunConfig) -> contextlib.AbstractContextManager:
    """The precision of float32 matmuls and convolutions for a run, as a context manager.

    `jax.default_matmul_precision(config.train.matmul_precision)`: computations traced (jitted)
    inside it use that precision ("highest": full float32 on every backend; "default": TF32 on
    NVIDIA GPUs, faster but numerically different). Wrap training and evaluation in it.

    Args:
      config: the run's config (`train.matmul_precision`, see `precision_of`).

    Returns:
      The context manager; `with matmul_precision(config): ...`.
    """
    return jax.default_matmul_precision(precision_of(config))


def padded_size(config: RunConfig, tasks: Sequence[Task]) -> int | None:
    """The training-set size every task is padded to, or None to train each at its own size.

    With `config.train.pad_tasks` (default True) and training sets of different sizes, every
    task pads to the largest: one compiled epoch serves them all (`steps.train_epoch` with
    `n`, exactly the unpadded results). Equal sizes need no padding.
    """
    sizes = {task.num_train for task in tasks}
    if len(sizes) == 1 or not config.train.get("pad_tasks", True):
        return None
    return max(sizes)


def training_data(task: Task, size: int | None) -> tuple[jax.Array, jax.Array, int | None]:
    """The task's training set on the device, zero-padded to `size` rows (`padded_size`).

    Returns:
      `(x [size or N, H, W, C], y [size or N], n)`: `n` is the task's own examples (None when
      not padded).
    """
    x, y = np.asarray(task.x_train), np.asarray(task.y_train)
    if size is None:
        return jnp.asarray(x), jnp.asarray(y), None
    pad = size - x.shape[0]
    x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
    y = np.concatenate([y, np.zeros((pad,), y.dtype)])
    return jnp.asarray(x), jnp.asarray(y), task.num_train


def device_splits(task: Task) -> dict[str, tuple[jax.Array, jax.Array]]:
    """The task's validation and test sets on the device, uploaded once per task."""
    return {
        "val": (jnp.asarray(task.x_val), jnp.asarray(task.y_val)),
        "test": (jnp.asarray(task.x_test), jnp.asarray(task.y_test)),
    }


def check_finite(losses: Any, task: int, epoch: int) -> None:
    """Raises FloatingPointError naming the first minibatch with a non-finite loss.

    Raises:
      ValueError: the epoch trained no minibatch (fewer training images than the batch size).
      FloatingPointError: a non-finite minibatch loss.
    """
    losses = np.asarray(losses)
    if losses.size == 0:
        raise ValueError(
            f"Task {task}, epoch {epoch} trained no minibatch: the task has fewer training "
            "images than config.train.batch_size; lower the batch size."
        )
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        raise FloatingPointError(
            f"Non-finite training loss at task {task}, epoch {epoch}, step {int(bad[0])} "
            f"(loss {losses[bad[0]]}); the last checkpoint is kept. Lower config.optim.lr "
            "or check the task's data."
        )


def base_results(
    config: RunConfig,
    tasks: Sequence[Task],
    records: Sequence[dict],
    chosen: Sequence[np.ndarray] | None,
    kept_rows: Sequence[Sequence[float]],
    start: Sequence[Sequence[float | None] | None] = (),
) -> dict[str, Any]:
    """The results fields every method reports (see docs/results-files.md).

    Args:
      config: the run's config.
      tasks: the task sequence.
      records: the per-epoch records (`metrics.summarize`).
      chosen: `[L]` bool configuration per task, or None if the method chooses none.
      kept_rows: `[T][i+1]` test accuracies of tasks `0..i` with the parameters kept after task
        i's end (`metrics.summarize`).
      start: per task, None or `[before, at_init]`: its test accuracy at its start with the
        model kept after the previous task, and with the run's initial shared parameters, both
        with the task's fresh task parameters (`metrics.forward_transfer`; None entries where
        unknown, missing tasks count as unknown).
    """
    pairs = [*start, *([None] * (len(tasks) - len(start)))]
    before = [None if p is None else p[0] for p in pairs]
    at_init = [None if p is None else p[1] for p in pairs]
    summary = metrics.summarize(records, len(tasks), kept_rows)
    results = {
        "method": config.method,
        "learner": config.learner,
        "dataset": config.data.name,
        "num_tasks": len(tasks),
        "seed": int(config.seed),
        "matmul_precision": precision_of(config),
        "conv_path": native_conv.path(),
        **summary,
        **metrics.transfer_metrics(summary["accuracy_matrix"], before, at_init),
        "accuracy_before_task": before,
        "accuracy_at_init": at_init,
        "chosen_configs": None,
        "transfer_fraction_per_layer": None,
    }
    if chosen is not None:
        configs = np.asarray(chosen, bool)
        results["chosen_configs"] = configs.astype(int).tolist()
        results["transfer_fraction_per_layer"] = configs.mean(axis=0).tolist()
    results["config"] = results_io.to_jsonable(config)
    results["xla_flags"] = os.environ.get("XLA_FLAGS", "")  # Kernels round differently.
    return results
