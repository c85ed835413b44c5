"""Runs method `static` for several named configurations and seeds, one workdir per run.

python -m launch.sweep --config=configs/default.py --workdir=/tmp/sweep --configs=all,top1,top2 \
    --seeds=0,1
python -m launch.sweep --config=configs/cifar100_10_static.py --workdir=/tmp/c10 --configs=paper
(--configs=every runs all 2^L bit strings; runs go to <workdir>/static_<name>/seed_<seed>; a run
whose results.json exists is skipped and an interrupted one resumes from its checkpoints)
"""

import os
from collections.abc import Callable, Sequence

import ml_collections
from absl import app, flags, logging
from ml_collections import config_flags

import lasem_jax
from lasem_jax import reports, trainer
from lasem_jax.data import make_tasks

_CONFIG = config_flags.DEFINE_config_file(
    "config", "configs/default.py", "Experiment config file.", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Parent directory of the runs.")
_CONFIGS = flags.DEFINE_string(
    "configs", "paper", "Comma-separated static configuration names, 'paper' or 'every'."
)
_SEEDS = flags.DEFINE_list("seeds", ["0"], "Comma-separated seeds.")
flags.mark_flags_as_required(["workdir"])


def run_dir(workdir: str, name: str, seed: int) -> str:
    """Returns the workdir of one run: `<workdir>/static_<name>/seed_<seed>`."""
    return os.path.join(workdir, f"static_{name}", f"seed_{seed}")


def run_sweep(
    config: ml_collections.ConfigDict,
    workdir: str,
    names: str,
    seeds: Sequence[int],
    on_epoch: Callable[[dict], None] | None = None,
) -> list[str]:
    """Trains every named static configuration with every seed.

    Args:
      config: the base config (not modified; each run trains on a copy).
      workdir: parent directory of the runs.
      names: `reports.expand_config_names` input, e.g. `all,top1`, `paper` or `every`.
      seeds: the seeds.
      on_epoch: optional per-epoch callback passed to `trainer.train_lifelong`.

    Returns:
      The run directories, in order (skipped complete runs included).

    Raises:
      ValueError: an unknown configuration name (before any training), or a training error.
    """
    num_layers = lasem_jax.get_architecture(config.model.arch).num_layers
    expanded = reports.expand_config_names(names, num_layers)
    dirs = []
    for name in expanded:
        for seed in seeds:
            path = run_dir(workdir, name, seed)
            dirs.append(path)
            if os.path.exists(os.path.join(path, reports.RESULTS_FILE)):
                logging.info("Skipping %s: results.json exists.", path)
                continue
            cfg = config.copy_and_resolve_references()
            cfg.method, cfg.static_config, cfg.seed = "static", name, int(seed)
            logging.info("Training static %s seed %d -> %s", name, seed, path)
            tasks = make_tasks(cfg.data, seed=cfg.seed, workdir=path)
            results = trainer.train_lifelong(tasks, cfg, workdir=path, on_epoch=on_epoch)
            logging.info(
                "static %s seed %d: mean peak accuracy %.4f, %.1f s",
                name,
                seed,
                results["mean_peak_accuracy"],
                results["train_seconds"],
            )
    return dirs


def main(argv: list[str]) -> None:
    """Runs the sweep given by the flags and prints the run directories."""
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        seeds = [int(s) for s in _SEEDS.value]
        dirs = run_sweep(_CONFIG.value, _WORKDIR.value, _CONFIGS.value, seeds)
    except (ValueError, FloatingPointError) as e:
        raise SystemExit(f"Error: {e}") from e
    print("\n".join(dirs))


if __name__ == "__main__":
    app.run(main)
