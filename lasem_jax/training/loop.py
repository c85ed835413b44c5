"""The one lifelong loop: workdir, resume, records, checkpoints and stops, for every method."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from absl import logging
from tensorboardX import SummaryWriter

from lasem_jax import interrupt
from lasem_jax.config import defaults
from lasem_jax.core.frozen import RunConfig
from lasem_jax.engine import lockstep
from lasem_jax.storage import checkpoint, files, results_io, workdir_lock
from lasem_jax.task import Task


class Method(Protocol):
    """One run of a lifelong method, as `run_method` drives it.

    A method keeps its own state and progress (the current task, its epochs done, the epochs
    of the whole run, the records so far, the seconds trained before this process); the loop
    owns the workdir. Implementations: `lasem_method.LasemRun` (lasem, static, single_task,
    brute_force) and `baseline_method.BaselineRun` (the competing methods).
    """

    task: int
    epoch: int
    global_epoch: int
    records: list[dict]
    elapsed: float

    def check(self, tree: Any, meta: dict) -> None:
        """Raises `LoadError` unless a checkpoint's `(tree, meta)` fits this run."""

    def restore(self, tree: Any, meta: dict, records: list[dict]) -> None:
        """Continues from a checkpoint (checked by `check`) and the run's records so far."""

    def checkpoint(self, config_json: dict, elapsed: float) -> tuple[Any, dict]:
        """The run as `(arrays, JSON metadata)`; the metadata holds `progress_meta`'s fields."""

    def train_task(self, loop: Loop) -> lockstep.RunGenerator:
        """Trains the current task's remaining epochs (a `lockstep` generator).

        After each epoch, with the run at that epoch: `loop.record(record)`, then
        `loop.end_epoch(record)`.
        """

    def end_task(self) -> None:
        """Ends the current task (consolidation, the kept row) and moves to the next."""

    def results(self) -> dict[str, Any]:
        """The finished run's results (all but `train_seconds`)."""

    def save_model(self, workdir: str) -> None:
        """Writes the finished run's trained model to `workdir` (`trained.save_trained`)."""


def progress_meta(method: Method, config_json: dict, elapsed: float) -> dict[str, Any]:
    """The checkpoint metadata every method writes: records so far, seconds, the config."""
    return {"num_records": len(method.records), "elapsed": elapsed, "config": config_json}


def tensorboard_scalars(record: dict) -> dict[str, float]:
    """The TensorBoard scalars of an epoch's record (`Loop.record`), by tag.

    `train/loss`, `train/lr`, `accuracy/val_current` and `accuracy/test_current` (the task
    being trained), `accuracy/val_mean_seen` and `accuracy/test_mean_seen` (the mean over every
    seen task, only in epochs that evaluate them all), and where the record has them
    `lasem/top_prior` and `lasem/posterior_entropy` (nats, of the epoch's mean posterior).
    Accuracies the epoch did not evaluate are left out.
    """
    scalars = {"train/loss": record.get("loss"), "train/lr": record.get("lr")}
    task = record.get("task", 0)
    for split in ("val", "test"):
        accs = record.get(split) or []
        if len(accs) > task:
            scalars[f"accuracy/{split}_current"] = accs[task]
        if accs and None not in accs:
            scalars[f"accuracy/{split}_mean_seen"] = sum(accs) / len(accs)
    scalars["lasem/top_prior"] = record.get("top_prior")
    if record.get("posterior"):
        probs = [p for p in record["posterior"] if p > 0]
        scalars["lasem/posterior_entropy"] = -sum(p * math.log(p) for p in probs)
    return {tag: float(v) for tag, v in scalars.items() if v is not None}


class Loop:
    """What a method calls at its epochs' ends: records, checkpoints, callbacks, stops."""

    def __init__(
        self,
        method: Method,
        config: RunConfig,
        workdir: str | None,
        on_epoch: Callable[[dict], None] | None,
    ) -> None:
        self._method, self._on_epoch = method, on_epoch
        self._config_json = results_io.to_jsonable(config)
        self._epochs = int(config.train.epochs_per_task)
        self._every = int(config.train.checkpoint_every_epochs)
        self.metrics = files.path(workdir, files.METRICS) if workdir else None
        self._workdir = workdir
        self._tensorboard = bool(config.train.get("tensorboard", True))
        self._writer: SummaryWriter | None = None
        self.store = None
        if workdir:
            os.makedirs(workdir, exist_ok=True)
            keep = int(config.train.keep_checkpoints)
            self.store = checkpoint.CheckpointStore(
                files.path(workdir, files.CHECKPOINTS), keep=keep
            )
        self.start = time.time()

    def resume(self, restart: bool) -> None:
        """Continues the method from its newest fitting checkpoint (none with `restart`).

        Then `metrics.jsonl` holds exactly the run's records so far (no duplicates).
        """
        if self.store and restart:
            self.store.clear()
        restored = None
        if self.store:
            restored = self.store.restore_run(
                self._config_json, defaults.default_json(), self._method.check
            )
        if restored is not None:
            tree, meta = restored
            self._method.restore(tree, meta, checkpoint.saved_records(meta, self.metrics))
            m = self._method
            logging.info(
                "Resuming from checkpoint: task %d, epoch %d (global epoch %d).",
                m.task,
                m.epoch,
                m.global_epoch,
            )
        if self.metrics:
            results_io.write_jsonl_atomic(self.metrics, self._method.records)
        if self._workdir and self._tensorboard:
            # A new event file beside any earlier one; TensorBoard drops the earlier files'
            # events from the next epoch on (epochs after the checkpoint, trained again).
            step = self._method.global_epoch + 1
            self._writer = SummaryWriter(
                self._workdir,
                purge_step=step if step > 1 else None,
                filename_suffix=f".{os.getpid()}.{time.time_ns()}",  # never an earlier file
            )
        self.start = time.time()

    def close(self) -> None:
        """Flushes and closes the TensorBoard event file (if any)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def seconds(self) -> float:
        """Seconds trained in all, this process included."""
        return self._method.elapsed + time.time() - self.start

    def record(self, record: dict) -> None:
        """Adds an epoch's record to the run, `metrics.jsonl` and TensorBoard's event file.

        The event file's step is the record's `global_epoch` (`tensorboard_scalars`).
        """
        self._method.records.append(record)
        if self.metrics:
            results_io.append_jsonl(self.metrics, record)
        if self._writer is not None:
            step = int(record.get("global_epoch", len(self._method.records)))
            for tag, value in tensorboard_scalars(record).items():
                self._writer.add_scalar(tag, value, step)

    def notify(self, record: dict) -> None:
        """Hands a record to the progress callback."""
        if self._on_epoch:
            self._on_epoch(record)

    def save(self) -> None:
        """Checkpoints the run in the background (the records stay in `metrics.jsonl`)."""
        if self.store:
            tree, meta = self._method.checkpoint(self._config_json, self.seconds())
            step = self._method.global_epoch
            self.store.save_async(step, tree, meta, depends_on=[self.metrics])

    def end_epoch(self, record: dict) -> None:
        """After an epoch's `record`: a checkpoint if due, the callback, a requested stop.

        A checkpoint is due every `train.checkpoint_every_epochs` epochs, at the task's last
        epoch, and when a stop is requested (`interrupt.Stopped` is raised after it).
        """
        m = self._method
        due = m.epoch == self._epochs or (self._every > 0 and m.epoch % self._every == 0)
        if due or interrupt.requested() is not None:
            self.save()
        self.notify(record)
        interrupt.check(m.task, m.epoch)


def run_method(
    method: Method,
    tasks: Sequence[Task],
    config: RunConfig,
    *,
    workdir: str | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    restart: bool = False,
) -> lockstep.RunGenerator:
    """Runs `method` over `tasks` (a `lockstep` generator returning the results dict).

    Holds the workdir's lock; resumes from the newest fitting checkpoint (`restart` discards
    them); per epoch appends the record to `metrics.jsonl` and checkpoints every
    `config.train.checkpoint_every_epochs` epochs and at every task's end; a stop request ends
    the run after the current epoch with a checkpoint (`interrupt.Stopped`). At the end the
    trained model goes to `workdir/model/` and the results, atomically, to
    `workdir/results.json`.
    """
    with workdir_lock.hold(workdir):
        loop = Loop(method, config, workdir, on_epoch)
        try:
            loop.resume(restart)
            with checkpoint.background_writes(loop.store):
                while method.task < len(tasks):
                    yield from method.train_task(loop)
                    method.end_task()
        finally:
            loop.close()
        results = method.results()
        results["train_seconds"] = loop.seconds()
        if workdir:
            method.save_model(workdir)
            results_io.write_json_atomic(files.path(workdir, files.RESULTS), results)
        return results
