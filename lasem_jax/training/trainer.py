"""The lifelong training loop: tasks in order, one jitted scan per epoch, metrics, results."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from lasem_jax import interrupt
from lasem_jax.baselines import BASELINES
from lasem_jax.config import defaults, run_config
from lasem_jax.core import search_space
from lasem_jax.engine import evaluation, lockstep, steps
from lasem_jax.networks import consolidate
from lasem_jax.storage import checkpoint, files, results_io, workdir_lock
from lasem_jax.task import Task, validate_tasks
from lasem_jax.training import brute_force, loop_utils, run_records, run_state, trained
from lasem_jax.training.baseline_loop import train_baseline

METHODS = (*run_config.LASEM_FAMILY, *BASELINES)
make_model = run_config.make_model


def validate_config(config: ml_collections.ConfigDict, num_layers: int) -> None:
    """Raises ValueError naming the field and the fix for any invalid setting."""
    if config.method not in METHODS:
        raise ValueError(f"config.method={config.method!r} is unknown; use one of {METHODS}.")
    run_config.validate_settings(config, num_layers)


def train_lifelong(
    tasks: Sequence[Task],
    config: ml_collections.ConfigDict,
    *,
    workdir: str | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    restart: bool = False,
) -> dict[str, Any]:
    """Trains `config.method` on `tasks` in order and returns the results.

    Per task: fresh task parameters, prior and optimiser state; shared layers no earlier task
    transfers are re-initialised. Per epoch: one jitted scan over the shuffled minibatches,
    then validation and test accuracy of every task seen so far (the current task with the
    configuration of highest prior). End of task: consolidation (`consolidate.consolidate`),
    then every seen task's test accuracy with the kept parameters (a row of `accuracy_matrix`).

    With a `workdir`, checkpoints go to `workdir/checkpoints` after every
    `config.train.checkpoint_every_epochs` epochs and at the end of every task, and a call with
    the same workdir resumes from the newest complete one (the same results as a run that never
    stopped); `restart=True` discards them and starts over. The run holds the workdir's lock
    (`workdir_lock`), and a stop request (`interrupt`, e.g. SIGTERM under the launchers) ends it
    after the current epoch with a checkpoint, raising `interrupt.Stopped`.

    Args:
      tasks: the task sequence (`Task` objects, validated here).
      config: the run's `ConfigDict` (see `configs/default.py`).
      workdir: if given, per-epoch records go to `workdir/metrics.jsonl`, checkpoints to
        `workdir/checkpoints`, and at the end, atomically, the kept model to `workdir/model/`
        (`lasem_jax.load_trained`) and the results to `workdir/results.json`.
      on_epoch: optional callback receiving each epoch's record (for progress display).
      restart: ignore and delete existing checkpoints in `workdir`.

    Returns:
      The results dict (fields documented in the README).

    Raises:
      ValueError: invalid tasks or config, or a checkpoint of a different config in `workdir`.
      workdir_lock.WorkdirBusyError: another process holds `workdir`.
      interrupt.Stopped: a stop was requested (the run checkpointed first).
      FloatingPointError: a non-finite training loss (the last checkpoint stays intact).
    """
    validate_tasks(tasks)
    validate_config(config, make_model(config, tasks[0]).num_layers)
    run_config.validate_for_tasks(config, tasks)
    with loop_utils.matmul_precision(config):
        if config.method in BASELINES:
            method = BASELINES[config.method]
            return train_baseline(
                method, tasks, config, workdir=workdir, on_epoch=on_epoch, restart=restart
            )
        run = lifelong_run(tasks, config, workdir=workdir, on_epoch=on_epoch, restart=restart)
        return lockstep.drive([run], vmap=False)[0]


def train_lifelong_seeds(
    task_lists: Sequence[Sequence[Task]],
    configs: Sequence[ml_collections.ConfigDict],
    *,
    workdirs: Sequence[str | None] | None = None,
    vmap: bool = True,
    on_epoch: Callable[[int, dict], None] | None = None,
    restart: bool = False,
) -> list[dict[str, Any]]:
    """Trains several runs (e.g. the seeds of one setting) together; results as `train_lifelong`.

    With `vmap`, runs whose epochs have equal shapes (same model, data sizes and learning rate;
    seeds and static configurations may differ) train each epoch as one vmapped jitted
    computation with the run as a batch axis, sharded over `configs[0].train.num_devices` local
    devices (0: all; results.json records `num_devices`); runs that differ fall back to one
    after another, and `vmap=False` always does.
    Batched kernels may sum in another order than unbatched ones, so parameters agree up to
    float rounding (~1e-7 per epoch); short runs give identical results (tested), long ones can
    drift apart like any float reassociation. Use `vmap=False` for results bitwise equal to
    `train_lifelong`. Methods of `lasem_jax.baselines` always run one after another. Runs
    trained together report the wall time of the joint training as their `train_seconds`.

    Args:
      task_lists: each run's tasks (a seed's own task design).
      configs: each run's config (usually equal but for `seed`).
      workdirs: each run's workdir (or None); resumes as `train_lifelong` does.
      vmap: batch compatible epochs across runs.
      on_epoch: optional callback `(run_index, record)`.
      restart: discard existing checkpoints.

    Returns:
      Each run's results dict, in order.
    """
    if len(task_lists) != len(configs):
        raise ValueError(f"{len(task_lists)} task lists for {len(configs)} configs.")
    workdirs = list(workdirs) if workdirs is not None else [None] * len(configs)

    def callback(i: int) -> Callable[[dict], None] | None:
        return None if on_epoch is None else (lambda record: on_epoch(i, record))

    if any(c.method in BASELINES for c in configs):
        return [
            train_lifelong(t, c, workdir=w, on_epoch=callback(i), restart=restart)
            for i, (t, c, w) in enumerate(zip(task_lists, configs, workdirs, strict=True))
        ]
    train = configs[0].train
    alone = not vmap or train.shard_batch  # Devices split minibatches, not runs.
    runs = []
    for i, (tasks, config, workdir) in enumerate(zip(task_lists, configs, workdirs, strict=True)):
        validate_tasks(tasks)
        validate_config(config, make_model(config, tasks[0]).num_layers)
        run_config.validate_for_tasks(config, tasks)
        runs.append(
            lifelong_run(tasks, config, workdir=workdir, on_epoch=callback(i), restart=restart)
        )
    precisions = {loop_utils.precision_of(c) for c in configs}
    if len(precisions) > 1:
        raise ValueError(
            f"Runs trained together share one train.matmul_precision, got {sorted(precisions)}; "
            "train runs of different precisions in separate calls."
        )
    with loop_utils.matmul_precision(configs[0]):
        if alone:
            return [lockstep.drive([run], vmap=False)[0] for run in runs]
        return lockstep.drive(
            runs,
            vmap=True,
            num_devices=int(train.num_devices),
            max_runs=int(train.get("max_batched_runs", 0)),
        )


def lifelong_run(
    tasks: Sequence[Task],
    config: ml_collections.ConfigDict,
    *,
    workdir: str | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    restart: bool = False,
) -> lockstep.RunGenerator:
    """`train_lifelong` as a generator yielding each epoch to train (`lockstep.drive` runs it).

    Arguments as `train_lifelong` (validated there); returns the results dict. Holds the
    workdir's lock (`workdir_lock`) while it runs.

    The host stays off the device's critical path: the driver answers an epoch's request and
    its evaluation's with results still being computed, and the run requests its next epoch
    before it reads the last one's statistics and accuracies, records and checkpoints it (the
    device trains epoch k+1 while the host writes epoch k; the same results, records and
    checkpoints as reading at once).
    """
    with workdir_lock.hold(workdir):
        return (yield from _run(tasks, config, workdir, on_epoch, restart))


def _run(
    tasks: Sequence[Task],
    config: ml_collections.ConfigDict,
    workdir: str | None,
    on_epoch: Callable[[dict], None] | None,
    restart: bool,
) -> lockstep.RunGenerator:
    """The body of `lifelong_run`."""
    models = [make_model(config, task) for task in tasks]
    num_layers = models[0].num_layers
    hp = run_config.step_config(config)
    fixed = config.method in ("static", "single_task")  # brute_force picks its own per task
    static_cfg = run_config.static_config(config, num_layers) if fixed else None
    config_json = results_io.to_jsonable(config)
    store = None
    if workdir:
        os.makedirs(workdir, exist_ok=True)
        store = checkpoint.CheckpointStore(
            files.path(workdir, files.CHECKPOINTS), keep=int(config.train.keep_checkpoints)
        )
        if restart:
            store.clear()
    epochs = int(config.train.epochs_per_task)
    check = functools.partial(run_state.check_checkpoint, models, hp, epochs)
    metrics_path = files.path(workdir, files.METRICS) if workdir else None
    run = _resume(store, config_json, check, metrics_path) if store else None
    if run is None:
        key, init_key = jax.random.split(jax.random.PRNGKey(config.seed))
        shared = models[0].init_shared(init_key)
        run = run_state.Run(key, shared, [], [], [False] * num_layers)
    if metrics_path:  # Exactly the records of the run so far: no duplicates after a resume.
        results_io.write_jsonl_atomic(metrics_path, run.records)
    evaluator = evaluation.Evaluator(models, tasks, int(config.train.eval_chunk))
    eval_every = int(config.train.eval_every_epochs)
    run_cfg = jnp.asarray(static_cfg if static_cfg is not None else np.ones(num_layers, bool))
    every = int(config.train.checkpoint_every_epochs)
    size = loop_utils.padded_size(config, tasks)
    start = time.time()

    def save() -> None:  # In the background; the records stay in metrics.jsonl.
        elapsed = run.elapsed + time.time() - start
        arrays, meta = run_state.to_checkpoint(run, config_json, elapsed)
        store.save_async(run.global_epoch, arrays, meta, depends_on=[metrics_path])

    def finish(out: dict, current: Any, read: Callable, lr: float, phase: Any) -> None:
        """Records, checkpoints and checks the epoch `run` is at (its results read)."""
        out = jax.device_get(dict(out))  # Waits for the epoch (one transfer).
        loop_utils.check_finite(out["losses"], run.task, run.epoch)
        current = np.asarray(current)
        record = run_records.epoch_record(run, models[run.task], hp, out, current, lr, phase)
        record.update(run_records.accuracy_lists(read(), run.task + 1))
        run.records.append(record)
        if metrics_path:
            results_io.append_jsonl(metrics_path, record)
        due = run.epoch == epochs or (every > 0 and run.epoch % every == 0)
        if store and (due or interrupt.requested() is not None):
            save()
        if on_epoch:
            on_epoch(record)
        interrupt.check(run.task, run.epoch)

    with checkpoint.background_writes(store):
        while run.task < len(tasks):
            t, task, model = run.task, tasks[run.task], models[run.task]
            if run.state is None:
                run.rng, dead_key, task_key, run_key = jax.random.split(run.rng, 4)
                run.shared = consolidate.refresh_dead_layers(
                    model, run.shared, run_state.as_bool(run.alive), dead_key
                )
                params = {"shared": run.shared, "task": model.init_task(task_key)}
                run.state = steps.init_state(model, hp, params, run_key, config.optim.lr)
                run.prior_history.append([])
            x, y, n = loop_utils.training_data(task, size)
            evaluate = functools.partial(run_records.evaluate, evaluator, run)
            if config.method == "brute_force" and run.epoch < epochs:
                found = yield from brute_force.search_task(
                    config, model, hp, (t, run.global_epoch, run.state), (x, y, n), evaluate
                )
                run.search.append(found.summary())
                run.state, run.epoch = found.state, epochs
                run.global_epoch += epochs
                for record in found.records:
                    run.records.append(record)
                    if metrics_path:
                        results_io.append_jsonl(metrics_path, record)
                    if on_epoch:
                        on_epoch(record)
                if store:
                    save()
            unread = None  # the last epoch's (out, current, read, lr, phase), not yet finished
            while run.epoch < epochs:
                lr = loop_utils.learning_rate(config, run.global_epoch)
                ehp, ecfg, phase = run_records.epoch_step(
                    config, model, hp, run.state, run_cfg, run.epoch
                )
                request = lockstep.EpochRequest(model, ehp, run.state, x, y, lr, ecfg, n)
                state, out = yield request
                if unread:  # The device trains this epoch meanwhile.
                    finish(*unread)
                run.state, run.epoch, run.global_epoch = state, run.epoch + 1, run.global_epoch + 1
                if static_cfg is not None:
                    current = static_cfg
                else:
                    current = run_records.device_config(model, hp, run.state)
                everything = run.epoch == epochs or run.epoch % eval_every == 0
                ask = run_records.eval_request(
                    evaluator, run, run.state, current, everything=everything
                )
                unread = (out, current, (yield ask), lr, phase)
            if unread:
                finish(*unread)
            if config.method == "brute_force":
                current = search_space.named_config(run.search[t]["chosen"], num_layers)
            else:
                current = run_records.current_config(model, hp, run.state, static_cfg)
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
            run.kept.append(run_records.kept_row(evaluator, run))
            run.task, run.epoch, run.state = run.task + 1, 0, None
    results = run_records.results(config, tasks, run)
    results["train_seconds"] = run.elapsed + time.time() - start
    if workdir:
        kept = {"shared": run.shared, "tasks": run.finished}
        trained.save_trained(
            workdir, config, tasks, kept, [run_state.as_bool(c) for c in run.chosen]
        )
        results_io.write_json_atomic(files.path(workdir, files.RESULTS), results)
    return results


def _resume(
    store: checkpoint.CheckpointStore, config_json: dict, check: checkpoint.Check, metrics_path: str
) -> run_state.Run | None:
    """The run saved in the newest readable checkpoint that passes `check`, or None.

    Its records are the first ones of `metrics_path` (`checkpoint.saved_records`).
    """
    restored = store.restore_run(config_json, defaults.default_json(), check)
    if restored is None:
        return None
    arrays, meta = restored
    records = checkpoint.saved_records(meta, metrics_path)
    run = run_state.from_checkpoint(arrays, meta, records)
    logging.info(
        "Resuming from checkpoint: task %d, epoch %d (global epoch %d).",
        run.task,
        run.epoch,
        run.global_epoch,
    )
    return run
