"""The competing methods (`lasem_jax.baselines`) as a method of the lifelong loop."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from lasem_jax.baselines.base import Baseline
from lasem_jax.core import search_space
from lasem_jax.core.frozen import RunConfig
from lasem_jax.engine import lockstep
from lasem_jax.errors import LoadError
from lasem_jax.storage import checkpoint, tree_io
from lasem_jax.task import Task
from lasem_jax.training import loop_utils, run_state, trained
from lasem_jax.training.loop import Loop, progress_meta

_META = ("task", "epoch", "global_epoch", "kept")


class BaselineRun:
    """One run of a competing method (`loop.Method`), on the same protocol as LASEM's.

    `config.train.epochs_per_task` epochs per task with the global learning-rate schedule;
    after each epoch the validation and test accuracy of every task seen so far; after each
    task's end the test accuracy of the kept model. Checkpoints hold the method's whole
    `train_state()` and the key the next task's key is split from. The method trains on its own
    (it yields nothing to the driver).

    Attributes:
      task: the current task.
      epoch: epochs of the current task done (0: not started).
      global_epoch: epochs done in the whole run (learning-rate schedule).
      records: the per-epoch metrics records so far.
      kept: per finished task i, the test accuracy of tasks 0..i after `end_task(i)`.
      start: per started task, None or `[before, at_init]` (`run_state.Run.start`; `at_init`
        from `Baseline.accuracy_at_init`, None where the method has no such model).
      elapsed: seconds trained before this process.
    """

    def __init__(self, method: type[Baseline], tasks: Sequence[Task], config: RunConfig) -> None:
        self._method, self._tasks, self._config = method, list(tasks), config
        self._runner = method(config, list(tasks))
        self._epochs = int(config.train.epochs_per_task)
        self.key = jax.random.PRNGKey(config.seed)
        self.task = self.epoch = self.global_epoch = 0
        self.records: list[dict] = []
        self.kept: list[list[float]] = []
        self.start: list[list[float | None] | None] = []
        self.elapsed = 0.0

    def check(self, tree: Any, meta: dict) -> None:
        """Raises `LoadError` unless the checkpoint's progress and state fit a fresh runner."""
        checkpoint.check_progress(meta, num_tasks=len(self._tasks), epochs=self._epochs)
        run_state.check_start(meta, meta["task"])
        if not isinstance(tree, dict) or set(tree) != {"runner", "key"}:
            raise LoadError("the checkpoint's arrays are not {'runner', 'key'}.")
        tree_io.check_like(tree["key"], jax.random.PRNGKey(0), "the checkpoint's key")
        try:
            self._method(self._config, self._tasks).load_train_state(tree["runner"])
        except (TypeError, KeyError, ValueError, AttributeError, IndexError) as e:
            raise LoadError(
                f"the checkpoint's state does not fit method {self._method.name}: "
                f"{type(e).__name__}: {e}"
            ) from None

    def restore(self, tree: Any, meta: dict, records: list[dict]) -> None:
        """Continues from a checkpoint written by `checkpoint`."""
        self._runner.load_train_state(tree["runner"])
        self.key, self.records = tree["key"], records
        self.task, self.epoch, self.global_epoch, self.kept = (meta[name] for name in _META)
        self.start = list(meta.get("start", [None] * (self.task + 1)))
        self.elapsed = float(meta["elapsed"])

    def checkpoint(self, config_json: dict, elapsed: float) -> tuple[Any, dict]:
        """`{"runner": train_state(), "key": key}` and the progress."""
        meta = {name: getattr(self, name) for name in (*_META, "start")}
        meta.update(progress_meta(self, config_json, elapsed))
        return {"runner": self._runner.train_state(), "key": self.key}, meta

    def _seen(self) -> list[dict]:
        return [loop_utils.device_splits(self._tasks[k]) for k in range(self.task + 1)]

    def train_task(self, loop: Loop) -> lockstep.RunGenerator:
        """Trains the current task's remaining epochs (nothing is yielded to the driver)."""
        yield from ()  # A generator like every method's; this one never waits on the driver.
        t, task = self.task, self._tasks[self.task]
        if self.epoch == 0:
            self.key, task_key = jax.random.split(self.key)
            self._runner.start_task(t, task_key)
        x, y = jnp.asarray(task.x_train), jnp.asarray(task.y_train)
        seen = self._seen()
        if self.epoch == 0:
            self.start.append(self._start_accuracy(seen[t]["test"]) if t > 0 else None)
        while self.epoch < self._epochs:
            lr = loop_utils.learning_rate(self._config, self.global_epoch)
            losses = self._runner.train_epoch(t, x, y, lr)
            self.epoch += 1
            self.global_epoch += 1
            loop_utils.check_finite(losses, t, self.epoch)
            record = self._record(seen, lr, losses)
            loop.record(record)
            loop.end_epoch(record)

    def _start_accuracy(self, test: tuple[jax.Array, jax.Array]) -> list[float | None]:
        """`[before, at_init]` of the task just started on its test split `(x, y)`."""
        first_key = jax.random.split(jax.random.PRNGKey(self._config.seed))[1]
        at_init = self._runner.accuracy_at_init(self.task, first_key, *test)
        return [self._runner.accuracy(self.task, *test), at_init]

    def _record(self, seen: list[dict], lr: float, losses: Any) -> dict[str, Any]:
        """The metrics record of the epoch just trained, with every seen task's accuracies."""
        t, runner = self.task, self._runner
        record: dict[str, Any] = {"task": t, "epoch": self.epoch, "global_epoch": self.global_epoch}
        record.update(lr=lr, loss=float(losses.mean()))
        config_now = runner.chosen_config(t)
        if config_now is not None:
            record["config"] = search_space.config_to_string(config_now)
        for split in ("val", "test"):
            record[split] = [runner.accuracy(k, *seen[k][split]) for k in range(t + 1)]
        return record

    def end_task(self) -> None:
        """The method's end of task, then the kept model's test accuracy of the seen tasks."""
        seen = self._seen()
        self._runner.end_task(self.task)
        self.kept.append([self._runner.accuracy(k, *seen[k]["test"]) for k in range(self.task + 1)])
        self.task, self.epoch = self.task + 1, 0

    def _chosen(self) -> list | None:
        chosen = [self._runner.chosen_config(t) for t in range(len(self._tasks))]
        return None if chosen[0] is None else chosen

    def results(self) -> dict[str, Any]:
        """The results dict (`loop_utils.base_results` and the method's parameter count)."""
        results = loop_utils.base_results(
            self._config, self._tasks, self.records, self._chosen(), self.kept, self.start
        )
        if not self._method.uses_learner:
            results["learner"] = "none"
        results["num_parameters"] = self._runner.num_parameters()
        return results

    def save_model(self, workdir: str) -> None:
        """The method's prediction state (`Baseline.predict_state`)."""
        trained.save_trained(
            workdir, self._config, self._tasks, self._runner.predict_state(), self._chosen()
        )
