"""The LASEM family (lasem, static, single_task, brute_force) as a method of the lifelong loop."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lasem_jax.config import run_config
from lasem_jax.core import search_space
from lasem_jax.core.frozen import RunConfig
from lasem_jax.engine import evaluation, lockstep, steps
from lasem_jax.networks import consolidate
from lasem_jax.task import Task
from lasem_jax.training import brute_force, loop_utils, run_records, run_state, trained
from lasem_jax.training.loop import Loop


class LasemRun:
    """One run of a LASEM-family method (`loop.Method`).

    Per task: fresh task parameters, prior and optimiser state; shared layers no earlier task
    transfers are re-initialised. Per epoch: one jitted loop over the shuffled minibatches,
    then validation and test accuracy of every task seen so far (the current task with the
    configuration of highest prior). End of task: consolidation (`consolidate.consolidate`),
    then every seen task's test accuracy with the kept parameters (a row of `accuracy_matrix`).

    The host stays off the device's critical path: the driver answers an epoch's request and
    its evaluation's with results still being computed, and the run requests its next epoch
    before it reads the last one's statistics and accuracies, records and checkpoints it (the
    device trains epoch k+1 while the host writes epoch k; the same results, records and
    checkpoints as reading at once).
    """

    def __init__(self, tasks: Sequence[Task], config: RunConfig) -> None:
        self._tasks, self._config = list(tasks), config
        self._models = [run_config.make_model(config, task) for task in tasks]
        num_layers = self._models[0].num_layers
        self._hp = run_config.step_config(config)
        fixed = config.method in ("static", "single_task")  # brute_force picks per task
        self._static = run_config.static_config(config, num_layers) if fixed else None
        self._run_cfg = jnp.asarray(self._static if fixed else np.ones(num_layers, bool))
        self._epochs = int(config.train.epochs_per_task)
        self._eval_every = int(config.train.eval_every_epochs)
        self._size = loop_utils.padded_size(config, tasks)
        self._evaluator = evaluation.Evaluator(self._models, tasks, int(config.train.eval_chunk))
        key, init_key = jax.random.split(jax.random.PRNGKey(config.seed))
        shared = self._models[0].init_shared(init_key)
        self._initial_shared = shared  # the model at initialisation, for forward transfer
        self.run = run_state.Run(key, shared, [], [], [False] * num_layers)

    task = property(lambda self: self.run.task)
    epoch = property(lambda self: self.run.epoch)
    global_epoch = property(lambda self: self.run.global_epoch)
    records = property(lambda self: self.run.records)
    elapsed = property(lambda self: self.run.elapsed)

    def check(self, tree: Any, meta: dict) -> None:
        """Raises `LoadError` unless the checkpoint holds this run (`run_state`)."""
        run_state.check_checkpoint(self._models, self._hp, self._epochs, tree, meta)

    def restore(self, tree: Any, meta: dict, records: list[dict]) -> None:
        """Continues from a checkpoint written by `checkpoint`."""
        self.run = run_state.from_checkpoint(tree, meta, records)

    def checkpoint(self, config_json: dict, elapsed: float) -> tuple[Any, dict]:
        """The run's arrays and metadata (`run_state.to_checkpoint`)."""
        return run_state.to_checkpoint(self.run, config_json, elapsed)

    def _start_task(self) -> None:
        """Fresh task parameters, optimiser state and prior; dead shared layers re-drawn."""
        run, model = self.run, self._models[self.run.task]
        run.rng, dead_key, task_key, run_key = jax.random.split(run.rng, 4)
        run.shared = consolidate.refresh_dead_layers(
            model, run.shared, run_state.as_bool(run.alive), dead_key
        )
        params = {"shared": run.shared, "task": model.init_task(task_key)}
        run.state = steps.init_state(model, self._hp, params, run_key, self._config.optim.lr)
        run.prior_history.append([])
        run.start.append(self._start_accuracy() if run.task > 0 else None)

    def _start_accuracy(self) -> list[float]:
        """The fresh task's test accuracy `[before, at_init]` (`run_state.Run.start`).

        With the kept shared parameters and with the run's initial ones; both use the task's
        fresh task parameters and the configuration it would be evaluated with now: the static
        one, LASEM's argmax of the fresh prior, brute force's `all`.
        """
        run, model = self.run, self._models[self.run.task]
        if self._static is not None:
            current = self._static
        elif self._hp.method == "lasem":
            current = run_records.current_config(model, self._hp, run.state, None)
        else:
            current = np.ones(model.num_layers, bool)
        params = [*run.finished, run.state.params["task"]]
        configs = [*run.chosen, current]
        return [
            float(self._evaluator.accuracies(shared, params, configs, [run.task])[run.task, 1])
            for shared in (run.state.params["shared"], self._initial_shared)
        ]

    def train_task(self, loop: Loop) -> lockstep.RunGenerator:
        """Trains the current task's remaining epochs (brute force: searches it first)."""
        run, config, hp = self.run, self._config, self._hp
        t, model = run.task, self._models[run.task]
        if run.state is None:
            self._start_task()
        x, y, n = loop_utils.training_data(self._tasks[t], self._size)
        if config.method == "brute_force" and run.epoch < self._epochs:
            evaluate = functools.partial(run_records.evaluate, self._evaluator, run)
            found = yield from brute_force.search_task(
                config, model, hp, (t, run.global_epoch, run.state), (x, y, n), evaluate
            )
            run.search.append(found.summary())
            run.state, run.epoch = found.state, self._epochs
            run.global_epoch += self._epochs
            for record in found.records:
                loop.record(record)
                loop.notify(record)
            loop.save()
        unread = None  # the last epoch's (out, current, read, lr, phase), not yet finished
        while run.epoch < self._epochs:
            lr = loop_utils.learning_rate(config, run.global_epoch)
            ehp, ecfg, phase = run_records.epoch_step(
                config, model, hp, run.state, self._run_cfg, run.epoch
            )
            state, out = yield lockstep.EpochRequest(model, ehp, run.state, x, y, lr, ecfg, n)
            if unread:  # The device trains this epoch meanwhile.
                self._finish(loop, *unread)
            run.state, run.epoch, run.global_epoch = state, run.epoch + 1, run.global_epoch + 1
            if self._static is not None:
                current = self._static
            else:
                current = run_records.device_config(model, hp, run.state)
            everything = run.epoch == self._epochs or run.epoch % self._eval_every == 0
            ask = run_records.eval_request(
                self._evaluator, run, run.state, current, everything=everything
            )
            unread = (out, current, (yield ask), lr, phase)
        if unread:
            self._finish(loop, *unread)

    def _finish(
        self, loop: Loop, out: Any, current: Any, read: Callable, lr: float, phase: Any
    ) -> None:
        """Records the epoch the run is at (its statistics and accuracies read now)."""
        run = self.run
        out = jax.device_get(dict(out))  # Waits for the epoch (one transfer).
        loop_utils.check_finite(out["losses"], run.task, run.epoch)
        current = np.asarray(current)
        model = self._models[run.task]
        record = run_records.epoch_record(run, model, self._hp, out, current, lr, phase)
        record.update(run_records.accuracy_lists(read(), run.task + 1))
        loop.record(record)
        loop.end_epoch(record)

    def end_task(self) -> None:
        """Consolidates the task's parameters and records the kept model's accuracies."""
        run, model = self.run, self._models[self.run.task]
        if self._config.method == "brute_force":
            chosen = run.search[run.task]["chosen"]
            current = search_space.named_config(chosen, model.num_layers)
        else:
            current = run_records.current_config(model, self._hp, run.state, self._static)
        shared, frozen, alive = consolidate.consolidate(
            run.shared,
            run.state.params["shared"],
            run.state.params["task"],
            current,
            run_state.as_bool(run.alive),
        )
        run.shared, run.alive = shared, alive.tolist()
        run.finished.append(frozen)
        run.chosen.append(current.tolist())
        run.kept.append(run_records.kept_row(self._evaluator, run))
        run.task, run.epoch, run.state = run.task + 1, 0, None

    def results(self) -> dict[str, Any]:
        """The results dict (fields in the README's results section)."""
        return run_records.results(self._config, self._tasks, self.run)

    def save_model(self, workdir: str) -> None:
        """The consolidated model: shared parameters, each task's own, their configurations."""
        kept = {"shared": self.run.shared, "tasks": self.run.finished}
        chosen = [run_state.as_bool(c) for c in self.run.chosen]
        trained.save_trained(workdir, self._config, self._tasks, kept, chosen)
