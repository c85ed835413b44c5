"""Runs one lifelong experiment from a config file and writes results to the workdir.

python -m launch.train --workdir=/tmp/lasem_digits
(the same command again resumes from the newest checkpoint in the workdir; --restart discards it)
python -m launch.train --config=configs/default.py --config.method=static \
    --config.static_config=all --workdir=/tmp/static_all
python -m launch.train --workdir=/tmp/lasem_seeds --seeds=0,1,2
(several seeds: one run per <workdir>/seed_<s>, trained together, each epoch of all seeds one
vmapped computation where shapes allow; --novmap_seeds trains them one after another)
"""

import json
import logging as pylogging
import os

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from lasem_jax import trainer
from lasem_jax.data import make_tasks

_CONFIG = config_flags.DEFINE_config_file(
    "config", "configs/default.py", "Experiment config file.", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where results.json and metrics.jsonl go.")
_RESTART = flags.DEFINE_bool("restart", False, "Discard checkpoints in --workdir and start over.")
_SEEDS = flags.DEFINE_list("seeds", [], "Seeds to run (overrides config.seed); empty: one run.")
_VMAP_SEEDS = flags.DEFINE_bool("vmap_seeds", True, "Batch the seeds' epochs with vmap.")
flags.mark_flags_as_required(["workdir"])


def _progress(seed: int, record: dict) -> None:
    """Logs one line per epoch: seed, task, epoch, accuracy, top configuration and its prior."""
    prior = ""
    if "top_prior" in record:
        prior = f" prior {record['top_prior']:.3f} posterior {record['top_posterior']:.3f}"
    logging.info(
        "seed %d task %d epoch %3d | loss %.4f | val %.3f test %.3f | config %s%s",
        seed,
        record["task"],
        record["epoch"],
        record["loss"],
        record["val"][-1],
        record["test"][-1],
        record.get("config", "-"),
        prior,
    )


def _hide_orbax_info(record: pylogging.LogRecord) -> bool:
    """Keeps the per-epoch lines readable: orbax logs ~10 INFO lines per checkpoint."""
    return record.levelno >= pylogging.WARNING or "orbax" not in record.pathname


def main(argv: list[str]) -> None:
    """Builds the tasks, trains, and writes `<workdir>/results.json`."""
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.get_absl_handler().addFilter(_hide_orbax_info)
    config = _CONFIG.value
    logging.info("JAX devices: %s", jax.devices())
    logging.info("Config:\n%s", config)
    seeds = [int(s) for s in _SEEDS.value] or [int(config.seed)]
    configs = [config.copy_and_resolve_references() for _ in seeds]
    for c, seed in zip(configs, seeds, strict=True):
        c.seed = seed
    workdirs = [os.path.join(_WORKDIR.value, f"seed_{s}") for s in seeds]
    workdirs = workdirs if _SEEDS.value else [_WORKDIR.value]
    try:
        pairs = zip(configs, workdirs, strict=True)
        task_lists = [make_tasks(c.data, seed=c.seed, workdir=w) for c, w in pairs]
        logging.info("Tasks: %s", [t.name for t in task_lists[0]])
        results = trainer.train_lifelong_seeds(
            task_lists,
            configs,
            workdirs=workdirs,
            vmap=_VMAP_SEEDS.value,
            on_epoch=lambda i, record: _progress(seeds[i], record),
            restart=_RESTART.value,
        )
    except (ValueError, FloatingPointError) as e:
        raise SystemExit(f"Error: {e}") from e
    for workdir, result in zip(workdirs, results, strict=True):
        keys = ("mean_peak_accuracy", "mean_final_accuracy", "chosen_configs", "train_seconds")
        summary = {k: result[k] for k in keys}
        logging.info("Done: %s", json.dumps(summary))
        print(f"Results: {os.path.join(workdir, 'results.json')}")
        print(json.dumps(summary))


if __name__ == "__main__":
    app.run(main)
