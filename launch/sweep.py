"""Runs method `static` for several named configurations and seeds, one workdir per run.

python -m launch.sweep --config=configs/default.py --workdir=/tmp/sweep --configs=all,top1,top2 \
    --seeds=0,1
python -m launch.sweep --config=configs/cifar100_10_static.py --workdir=/tmp/c10 --configs=paper
(--configs=every runs all 2^L bit strings; runs go to <workdir>/static_<name>/seed_<seed>; a run
whose results.json holds the same config is skipped and an interrupted one resumes from its
checkpoints; results of a different config stop the sweep before any training: --restart
discards every run's results and checkpoints and trains them all again, or use another --workdir;
the runs train together, each epoch one vmapped call sharded over config.train.num_devices
devices (0: all), --nobatch_runs trains one after another)
On several processes or hosts (each trains every N-th run; see README "Scaling out"):
python -m launch.sweep ... --coordinator_address=host0:1234 --num_processes=N --process_id=I
Shared flags (launch/common.py, listed by --helpfull): --config=FILE[:arg] (default
configs/default.py) with --config.<field>=<value> overrides, --print_config (every field and its
value, then exit), --debug (tracebacks on errors).
"""

import os
from collections.abc import Callable, Sequence

import ml_collections
from absl import flags, logging

import lasem_jax
from lasem_jax.analysis import reports
from lasem_jax.data import make_tasks
from lasem_jax.experiments import study
from lasem_jax.storage import files
from lasem_jax.training import trainer
from launch import common, distributed

_CONFIG = common.define_config()
_WORKDIR = flags.DEFINE_string("workdir", None, "Parent directory of the runs.")
_CONFIGS = flags.DEFINE_string(
    "configs", "paper", "Comma-separated static configuration names, 'paper' or 'every'."
)
_SEEDS = flags.DEFINE_list("seeds", ["0"], "Comma-separated seeds.")
_RESTART = flags.DEFINE_bool(
    "restart", False, "Discard the runs' results and checkpoints and train every run again."
)
_BATCH_RUNS = flags.DEFINE_bool(
    "batch_runs",
    True,
    "Train the runs together, each epoch one vmapped call sharded over config.train.num_devices"
    " devices; --nobatch_runs trains one run after another.",
)


def run_dir(workdir: str, name: str, seed: int) -> str:
    """Returns the workdir of one run: `<workdir>/static_<name>/seed_<seed>`."""
    return os.path.join(workdir, f"static_{name}", f"seed_{seed}")


def static_run_config(
    config: ml_collections.ConfigDict, name: str, seed: int
) -> ml_collections.ConfigDict:
    """The resolved config of one run: `config` with method static, `name` and `seed`."""
    cfg = config.copy_and_resolve_references()
    cfg.method, cfg.static_config, cfg.seed = "static", name, int(seed)
    return cfg


def run_sweep(
    config: ml_collections.ConfigDict,
    workdir: str,
    names: str,
    seeds: Sequence[int],
    on_epoch: Callable[[int, dict], None] | None = None,
    restart: bool = False,
    batch_runs: bool = True,
    process: tuple[int, int] = (0, 1),
) -> list[str]:
    """Trains every named static configuration with every seed.

    A run whose results.json holds the same resolved config is skipped; one whose results.json
    holds another config stops the sweep before any training. The runs left train together
    (`trainer.train_lifelong_seeds`: one vmapped call per epoch, the run axis sharded over
    `config.train.num_devices` devices) or, with `batch_runs=False`, one after another.

    Args:
      config: the base config (not modified; each run trains on a copy).
      workdir: parent directory of the runs.
      names: `reports.expand_config_names` input, e.g. `all,top1`, `paper` or `every`.
      seeds: the seeds.
      on_epoch: optional per-epoch callback `(run_index, record)`, over the runs trained.
      restart: delete every run's results and checkpoints and train it again.
      batch_runs: train the runs as one batch (False: one after another).
      process: `(index, count)`: this process handles every count-th run from index
        (`launch.distributed`); each run's files are written by exactly one process.

    Returns:
      The run directories, in order (skipped complete runs included).

    Raises:
      ValueError: an unknown configuration name or, without `restart`, a run directory holding
        results of a different config (both before any training), or a training error.
    """
    num_layers = lasem_jax.get_architecture(config.model.arch).num_layers
    expanded = reports.expand_config_names(names, num_layers)
    pairs = [(name, seed) for name in expanded for seed in seeds]
    every = [(run_dir(workdir, n, s), static_run_config(config, n, s)) for n, s in pairs]
    runs = [
        (path, cfg, not restart and study.is_complete(path, cfg))
        for path, cfg in distributed.share(every, *process)
    ]
    todo = []
    for path, cfg, complete in runs:
        if complete:
            logging.info("Skipping %s: results.json of this config exists.", path)
            continue
        results_path = files.path(path, files.RESULTS)
        if restart and os.path.exists(results_path):
            os.remove(results_path)
        todo.append((path, cfg, make_tasks(cfg.data, seed=cfg.seed, workdir=path)))
    if todo:
        how = "together" if batch_runs else "one after another"
        logging.info("Training %d static run(s) %s.", len(todo), how)
        all_results = trainer.train_lifelong_seeds(
            [tasks for _, _, tasks in todo],
            [cfg for _, cfg, _ in todo],
            workdirs=[path for path, _, _ in todo],
            vmap=batch_runs,
            on_epoch=on_epoch,
            restart=restart,
        )
        for (path, cfg, _), results in zip(todo, all_results, strict=True):
            logging.info(
                "static %s seed %d: mean peak accuracy %.4f, %d device(s) -> %s",
                cfg.static_config,
                cfg.seed,
                results["mean_peak_accuracy"],
                results["num_devices"],
                path,
            )
    return [path for path, _ in every]


def main(argv: list[str]) -> None:
    """Runs the sweep given by the flags and prints the run directories."""
    config = common.start(argv, _CONFIG, _WORKDIR.value, "the parent directory of the sweep's runs")
    seeds = common.parse_seeds(_SEEDS.value)
    common.prepare_workdir(_WORKDIR.value)
    process = distributed.init()  # Before anything touches a device (the summary does).
    common.log_config_summary(config)
    dirs = run_sweep(
        config,
        _WORKDIR.value,
        _CONFIGS.value,
        seeds,
        restart=_RESTART.value,
        batch_runs=_BATCH_RUNS.value,
        process=process,
    )
    print("\n".join(dirs))


if __name__ == "__main__":
    common.run(main)
