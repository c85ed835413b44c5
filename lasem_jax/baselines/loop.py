"""The lifelong loop of the competing methods: same data, schedule, metrics and results files."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from lasem_jax import loop_utils, results_io, search_space
from lasem_jax.baselines.base import Baseline
from lasem_jax.task import Task


def train_baseline(
    method: type[Baseline],
    tasks: Sequence[Task],
    config: ml_collections.ConfigDict,
    *,
    workdir: str | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> dict[str, Any]:
    """Trains a competing method on `tasks` in order, as `train_lifelong` trains LASEM.

    Same protocol as LASEM: `config.train.epochs_per_task` epochs per task with the global
    learning-rate schedule, after each epoch the validation and test accuracy of every task
    seen so far, and the same `metrics.jsonl` / `results.json` (written atomically). These
    methods do not checkpoint: a run that stops starts over (`train_lifelong` documents it).

    Args:
      method: the `Baseline` subclass.
      tasks: validated tasks.
      config: the run's config.
      workdir: where `metrics.jsonl` and `results.json` go (optional).
      on_epoch: optional callback receiving each epoch's record.

    Returns:
      The results dict.
    """
    runner = method(config, list(tasks))
    key = jax.random.PRNGKey(config.seed)
    metrics_path = os.path.join(workdir, "metrics.jsonl") if workdir else None
    if workdir:
        os.makedirs(workdir, exist_ok=True)
        results_io.write_jsonl_atomic(metrics_path, [])
    records: list[dict] = []
    global_epoch = 0
    start = time.time()
    for t, task in enumerate(tasks):
        key, task_key = jax.random.split(key)
        runner.start_task(t, task_key)
        x, y = jnp.asarray(task.x_train), jnp.asarray(task.y_train)
        seen = [loop_utils.device_splits(tasks[k]) for k in range(t + 1)]
        for epoch in range(1, int(config.train.epochs_per_task) + 1):
            lr = loop_utils.learning_rate(config, global_epoch)
            losses = runner.train_epoch(t, x, y, lr)
            global_epoch += 1
            loop_utils.check_finite(losses, t, epoch)
            record: dict[str, Any] = {"task": t, "epoch": epoch, "global_epoch": global_epoch}
            record.update(lr=lr, loss=float(losses.mean()))
            config_now = runner.chosen_config(t)
            if config_now is not None:
                record["config"] = search_space.config_to_string(config_now)
            for split in ("val", "test"):
                record[split] = [runner.accuracy(k, *seen[k][split]) for k in range(t + 1)]
            records.append(record)
            if metrics_path:
                results_io.append_jsonl(metrics_path, record)
            if on_epoch:
                on_epoch(record)
        runner.end_task(t)
    chosen = [runner.chosen_config(t) for t in range(len(tasks))]
    results = loop_utils.base_results(config, tasks, records, None if chosen[0] is None else chosen)
    if not method.uses_learner:
        results["learner"] = "none"
    results["num_parameters"] = runner.num_parameters()
    results["train_seconds"] = time.time() - start
    if workdir:
        results_io.write_json_atomic(os.path.join(workdir, "results.json"), results)
    return results
