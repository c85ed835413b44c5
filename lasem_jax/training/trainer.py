"""Training lifelong runs: the entry points, and the registry of methods the loop drives."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import ml_collections

from lasem_jax.baselines import BASELINES
from lasem_jax.config import run_config
from lasem_jax.core.frozen import RunConfig, freeze
from lasem_jax.engine import lockstep
from lasem_jax.task import Task, validate_tasks
from lasem_jax.training import loop, loop_utils
from lasem_jax.training.baseline_method import BaselineRun
from lasem_jax.training.lasem_method import LasemRun

METHODS = (*run_config.LASEM_FAMILY, *BASELINES)  # the built-in methods


# What the entry points accept: the launchers' ConfigDict, or an already frozen config.
EntryConfig = ml_collections.ConfigDict | RunConfig


def make_run(tasks: Sequence[Task], config: RunConfig) -> loop.Method:
    """The run of `config.method` the lifelong loop drives (`loop.Method`).

    The LASEM family is `lasem_method.LasemRun`; every method of `baselines.BASELINES`
    (`baselines.register` adds one) runs as a `baseline_method.BaselineRun`.
    """
    if config.method in run_config.LASEM_FAMILY:
        return LasemRun(tasks, config)
    return BaselineRun(BASELINES[config.method], tasks, config)


make_model = run_config.make_model


def validate_config(config: RunConfig, num_layers: int) -> None:
    """Raises ValueError naming the field and the fix for any invalid setting."""
    known = (*run_config.LASEM_FAMILY, *BASELINES)
    if config.method not in known:
        raise ValueError(f"config.method={config.method!r} is unknown; use one of {known}.")
    run_config.validate_settings(config, num_layers)


def train_lifelong(
    tasks: Sequence[Task],
    config: EntryConfig,
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
      config: the run's `ConfigDict` (see `configs/default.py`), or a frozen config; frozen
        here (`core.frozen.freeze`), so later changes of the ConfigDict do not reach the run.
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
    config = freeze(config)
    validate_tasks(tasks)
    validate_config(config, make_model(config, tasks[0]).num_layers)
    run_config.validate_for_tasks(config, tasks)
    with loop_utils.matmul_precision(config):
        run = lifelong_run(tasks, config, workdir=workdir, on_epoch=on_epoch, restart=restart)
        return lockstep.drive([run], vmap=False)[0]


def train_lifelong_seeds(
    task_lists: Sequence[Sequence[Task]],
    configs: Sequence[EntryConfig],
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
      configs: each run's config (usually equal but for `seed`), frozen here.
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
    configs = [freeze(c) for c in configs]

    def callback(i: int) -> Callable[[dict], None] | None:
        return None if on_epoch is None else (lambda record: on_epoch(i, record))

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
    config: EntryConfig,
    *,
    workdir: str | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    restart: bool = False,
) -> lockstep.RunGenerator:
    """`train_lifelong` as a generator yielding each epoch to train (`lockstep.drive` runs it).

    Arguments as `train_lifelong` (validated there; `config` frozen here); returns the results
    dict. The method's run (`make_run`) goes through the one lifelong loop (`loop.run_method`),
    which holds the workdir's lock while it runs. A competing method trains without yielding.
    """
    config = freeze(config)
    run = make_run(tasks, config)
    return (
        yield from loop.run_method(
            run, tasks, config, workdir=workdir, on_epoch=on_epoch, restart=restart
        )
    )
