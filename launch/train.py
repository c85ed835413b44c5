"""Runs one lifelong experiment from a config file and writes results to the workdir.

python -m launch.train --workdir=/tmp/lasem_digits
(the same command again resumes from the newest checkpoint in the workdir; --restart discards it;
Ctrl-C or SIGTERM stops after the current epoch with a checkpoint)
python -m launch.train --config=configs/default.py --config.method=static \
    --config.static_config=all --workdir=/tmp/static_all
python -m launch.train --workdir=/tmp/lasem_seeds --seeds=0,1,2
(several seeds: one run per <workdir>/seed_<s>, trained together, each epoch of all seeds one
vmapped computation where shapes allow; --novmap_seeds trains them one after another)
python -m launch.train --print_config   (every --config.<field> and its value)
(--coordinator_address=host:port --num_processes=N --process_id=I: each process trains every
N-th seed; see README "Scaling out")
Shared flags (launch/common.py, listed by --helpfull): --config=FILE[:arg] (default
configs/default.py) with --config.<field>=<value> overrides, --print_config (every field and its
value, then exit), --debug (tracebacks on errors).
"""

import json
import os

import jax
from absl import flags, logging

from lasem_jax.data import make_tasks
from lasem_jax.training import trainer
from launch import common, distributed

_CONFIG = common.define_config()
_WORKDIR = flags.DEFINE_string("workdir", None, "Where results.json, metrics.jsonl, model/ go.")
_RESTART = flags.DEFINE_bool("restart", False, "Discard checkpoints in --workdir and start over.")
_SEEDS = flags.DEFINE_list("seeds", [], "Seeds to run (overrides config.seed); empty: one run.")
_VMAP_SEEDS = flags.DEFINE_bool("vmap_seeds", True, "Batch the seeds' epochs with vmap.")


def main(argv: list[str]) -> None:
    """Builds the tasks, trains, and writes `<workdir>/results.json` and `<workdir>/model/`."""
    what = "the directory for results, model and checkpoints"
    config = common.start(argv, _CONFIG, _WORKDIR.value, what)
    seeds = common.parse_seeds(_SEEDS.value) or [int(config.seed)]
    configs = [config.copy_and_resolve_references() for _ in seeds]
    for c, seed in zip(configs, seeds, strict=True):
        c.seed = seed
    workdirs = [os.path.join(_WORKDIR.value, f"seed_{s}") for s in seeds]
    workdirs = workdirs if _SEEDS.value else [_WORKDIR.value]
    mine = distributed.share(range(len(seeds)), *distributed.init())  # This process's seeds.
    seeds, configs = [seeds[i] for i in mine], [configs[i] for i in mine]
    workdirs = [common.prepare_workdir(workdirs[i]) for i in mine]
    logging.info("JAX devices: %s", jax.devices())
    common.log_config_summary(config)
    common.warn_ignored_fields(config)
    task_lists = [
        make_tasks(c.data, seed=c.seed, workdir=w) for c, w in zip(configs, workdirs, strict=True)
    ]
    for seed, tasks in zip(seeds, task_lists, strict=True):
        logging.info("Seed %d tasks: %s", seed, ", ".join(t.name for t in tasks))
    progress = common.ProgressLine(len(task_lists[0]), config.train.epochs_per_task, len(seeds))
    logging.info("Compiling the training step (the first epoch includes compilation) ...")
    results = trainer.train_lifelong_seeds(
        task_lists,
        configs,
        workdirs=workdirs,
        vmap=_VMAP_SEEDS.value,
        on_epoch=lambda i, record: logging.info("seed %d %s", seeds[i], progress(record)),
        restart=_RESTART.value,
    )
    for workdir, tasks, result in zip(workdirs, task_lists, results, strict=True):
        keys = ("mean_peak_accuracy", "mean_final_accuracy", "chosen_configs", "train_seconds")
        summary = {k: result[k] for k in keys}
        common.warn_if_chance(result, tasks)
        print(f"Results: {os.path.join(workdir, 'results.json')}")
        print(json.dumps(summary))


if __name__ == "__main__":
    common.run(main)
