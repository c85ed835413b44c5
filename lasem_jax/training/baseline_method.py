"""The lifelong loop of the competing methods: same data, schedule, metrics and results files."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
from absl import logging

from lasem_jax import interrupt
from lasem_jax.baselines.base import Baseline
from lasem_jax.config import defaults
from lasem_jax.core import search_space
from lasem_jax.errors import LoadError
from lasem_jax.storage import checkpoint, files, results_io, tree_io, workdir_lock
from lasem_jax.task import Task
from lasem_jax.training import loop_utils, trained


@dataclasses.dataclass
class Progress:
    """Where a competing method's run stands after an epoch (checkpointed with its state).

    Attributes:
      key: the key the next task's key is split from.
      task: the current task.
      epoch: epochs of the current task done (0: not started).
      global_epoch: epochs done in the whole run (learning-rate schedule).
      records: the per-epoch metrics records so far (appended to `metrics.jsonl`, where a
        checkpoint, which stores only their number, finds them).
      kept: per finished task i, the test accuracy of tasks 0..i after `end_task(i)`.
      elapsed: seconds trained before this process.
    """

    key: Any
    task: int = 0
    epoch: int = 0
    global_epoch: int = 0
    records: list[dict] = dataclasses.field(default_factory=list)
    kept: list[list[float]] = dataclasses.field(default_factory=list)
    elapsed: float = 0.0


_META = ("task", "epoch", "global_epoch", "kept")


def train_baseline(
    method: type[Baseline],
    tasks: Sequence[Task],
    config: ml_collections.ConfigDict,
    *,
    workdir: str | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    restart: bool = False,
) -> dict[str, Any]:
    """Trains a competing method on `tasks` in order, as `train_lifelong` trains LASEM.

    Same protocol as LASEM: `config.train.epochs_per_task` epochs per task with the global
    learning-rate schedule, after each epoch the validation and test accuracy of every task
    seen so far, after each task's end the test accuracy of the kept model, the same
    `metrics.jsonl` / `results.json` / `model/`, and the same checkpoints and resume (the
    method's whole `train_state()` every `config.train.checkpoint_every_epochs` epochs and at
    every task's last epoch), stops on a signal (`interrupt`) and the workdir lock.

    Args:
      method: the `Baseline` subclass.
      tasks: validated tasks.
      config: the run's config.
      workdir: where `metrics.jsonl`, `results.json`, `model/` and checkpoints go (optional).
      on_epoch: optional callback receiving each epoch's record.
      restart: discard existing checkpoints.

    Returns:
      The results dict.
    """
    with workdir_lock.hold(workdir):
        return _train(method, tasks, config, workdir, on_epoch, restart)


def _train(
    method: type[Baseline],
    tasks: Sequence[Task],
    config: ml_collections.ConfigDict,
    workdir: str | None,
    on_epoch: Callable[[dict], None] | None,
    restart: bool,
) -> dict[str, Any]:
    """The body of `train_baseline`."""
    runner = method(config, list(tasks))
    config_json = results_io.to_jsonable(config)
    store = None
    if workdir:
        store = checkpoint.CheckpointStore(
            files.path(workdir, files.CHECKPOINTS), keep=int(config.train.keep_checkpoints)
        )
        if restart:
            store.clear()
    epochs = int(config.train.epochs_per_task)
    check = functools.partial(_check_checkpoint, method, config, tasks, epochs)
    metrics_path = files.path(workdir, files.METRICS) if workdir else None
    progress = _resume(store, runner, config_json, check, metrics_path) if store else None
    progress = progress or Progress(key=jax.random.PRNGKey(config.seed))
    if metrics_path:  # Exactly the records of the run so far: no duplicates after a resume.
        results_io.write_jsonl_atomic(metrics_path, progress.records)
    every = int(config.train.checkpoint_every_epochs)
    start = time.time()
    p = progress
    with checkpoint.background_writes(store):
        while p.task < len(tasks):
            t, task = p.task, tasks[p.task]
            if p.epoch == 0:
                p.key, task_key = jax.random.split(p.key)
                runner.start_task(t, task_key)
            x, y = jnp.asarray(task.x_train), jnp.asarray(task.y_train)
            seen = [loop_utils.device_splits(tasks[k]) for k in range(t + 1)]
            while p.epoch < epochs:
                lr = loop_utils.learning_rate(config, p.global_epoch)
                losses = runner.train_epoch(t, x, y, lr)
                p.epoch += 1
                p.global_epoch += 1
                loop_utils.check_finite(losses, t, p.epoch)
                record = _record(runner, seen, p, lr, losses)
                p.records.append(record)
                if metrics_path:
                    results_io.append_jsonl(metrics_path, record)
                due = p.epoch == epochs or (every > 0 and p.epoch % every == 0)
                if store and (due or interrupt.requested() is not None):
                    meta = {name: getattr(p, name) for name in _META}
                    elapsed = p.elapsed + time.time() - start
                    meta.update(num_records=len(p.records), elapsed=elapsed, config=config_json)
                    tree = {"runner": runner.train_state(), "key": p.key}
                    store.save_async(p.global_epoch, tree, meta, depends_on=[metrics_path])
                if on_epoch:
                    on_epoch(record)
                interrupt.check(t, p.epoch)
            runner.end_task(t)
            p.kept.append([runner.accuracy(k, *seen[k]["test"]) for k in range(t + 1)])
            p.task, p.epoch = p.task + 1, 0
    chosen = [runner.chosen_config(t) for t in range(len(tasks))]
    chosen = None if chosen[0] is None else chosen
    results = loop_utils.base_results(config, tasks, p.records, chosen, p.kept)
    if not method.uses_learner:
        results["learner"] = "none"
    results["num_parameters"] = runner.num_parameters()
    results["train_seconds"] = p.elapsed + time.time() - start
    if workdir:
        trained.save_trained(workdir, config, tasks, runner.predict_state(), chosen)
        results_io.write_json_atomic(files.path(workdir, files.RESULTS), results)
    return results


def _record(
    runner: Baseline, seen: list[dict], p: Progress, lr: float, losses: Any
) -> dict[str, Any]:
    """The metrics record of the epoch just trained, with every seen task's accuracies."""
    t = p.task
    record: dict[str, Any] = {"task": t, "epoch": p.epoch, "global_epoch": p.global_epoch}
    record.update(lr=lr, loss=float(losses.mean()))
    config_now = runner.chosen_config(t)
    if config_now is not None:
        record["config"] = search_space.config_to_string(config_now)
    for split in ("val", "test"):
        record[split] = [runner.accuracy(k, *seen[k][split]) for k in range(t + 1)]
    return record


def _check_checkpoint(
    method: type[Baseline],
    config: ml_collections.ConfigDict,
    tasks: Sequence[Task],
    epochs: int,
    tree: Any,
    meta: dict,
) -> None:
    """Raises `LoadError` unless the checkpoint's progress and state load into a fresh runner."""
    checkpoint.check_progress(meta, num_tasks=len(tasks), epochs=epochs)
    if not isinstance(tree, dict) or set(tree) != {"runner", "key"}:
        raise LoadError("the checkpoint's arrays are not {'runner', 'key'}.")
    tree_io.check_like(tree["key"], jax.random.PRNGKey(0), "the checkpoint's key")
    try:
        method(config, list(tasks)).load_train_state(tree["runner"])
    except (TypeError, KeyError, ValueError, AttributeError, IndexError) as e:
        raise LoadError(
            f"the checkpoint's state does not fit method {method.name}: {type(e).__name__}: {e}"
        ) from None


def _resume(
    store: checkpoint.CheckpointStore,
    runner: Baseline,
    config_json: dict,
    check: checkpoint.Check,
    metrics_path: str,
) -> Progress | None:
    """Restores `runner` and the run's progress from the newest checkpoint that passes `check`.

    The run's records are the first ones of `metrics_path` (`checkpoint.saved_records`).
    """
    restored = store.restore_run(config_json, defaults.default_json(), check)
    if restored is None:
        return None
    tree, meta = restored
    records = checkpoint.saved_records(meta, metrics_path)
    runner.load_train_state(tree["runner"])
    progress = Progress(tree["key"], records=records, **{name: meta[name] for name in _META})
    progress.elapsed = float(meta["elapsed"])
    logging.info(
        "Resuming from checkpoint: task %d, epoch %d (global epoch %d).",
        progress.task,
        progress.epoch,
        progress.global_epoch,
    )
    return progress
