"""Runs a paired study (LASEM, its ablations, the statics, brute force) and writes its report.

python -m launch.study --config=configs/fashion_mnist_lasem_hps.py:small --seeds=0,1,2,3,4 \
    --learners=hps,dfcnn --workdir=/tmp/study_fm_small
(per learner <workdir>/<learner>/{lasem,lasem_<ablation>,static_<name>,brute_force}/seed_<s>;
all runs train together, each epoch one vmapped call per group of compatible runs; a run whose
results.json holds its config is skipped, an interrupted one resumes; then launch.report's
table, paired table (LASEM minus each setting, paired by seed, 95% t-intervals) and figures
replace <workdir>/report)
--ablations=mean,running_mean,... adds LASEM settings from lasem_jax.experiments.study.ABLATIONS;
--statics=paper|every|all,top1,...; --brute_force adds brute force (the oracle search).
Shared flags (launch/common.py, listed by --helpfull): --config=FILE[:arg] with
--config.<field>=<value> overrides, --print_config, --debug.
"""

import os
import shutil

from absl import flags, logging

from lasem_jax.analysis import reports
from lasem_jax.experiments import study
from launch import common

_CONFIG = common.define_config()
_WORKDIR = flags.DEFINE_string("workdir", None, "Parent directory of the study's runs.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2", "3", "4"], "Comma-separated seeds.")
_LEARNERS = flags.DEFINE_list("learners", ["hps", "dfcnn"], "Base learners: hps, tf, dfcnn.")
_STATICS = flags.DEFINE_string("statics", "paper", "Static configurations ('paper', 'every').")
_ABLATIONS = flags.DEFINE_list("ablations", [], f"LASEM variants: {', '.join(study.ABLATIONS)}.")
_BRUTE_FORCE = flags.DEFINE_bool("brute_force", False, "Add brute force (the oracle search).")
_RESTART = flags.DEFINE_bool("restart", False, "Discard every run's results; train all again.")


def main(argv: list[str]) -> None:
    """Trains the study's missing runs, writes the report and prints its paired table."""
    config = common.start(argv, _CONFIG, _WORKDIR.value, "the parent directory of the study's runs")
    workdir = common.prepare_workdir(_WORKDIR.value)
    runs = study.study_runs(
        config,
        workdir,
        common.parse_seeds(_SEEDS.value),
        learners=_LEARNERS.value,
        statics=_STATICS.value,
        ablations=_ABLATIONS.value,
        brute_force=_BRUTE_FORCE.value,
    )
    common.log_config_summary(config)
    progress = common.ProgressLine(config.data.num_tasks, config.train.epochs_per_task, len(runs))
    study.run_study(
        runs,
        restart=_RESTART.value,
        on_epoch=lambda i, record: logging.log_every_n_seconds(
            logging.INFO, "run %d %s", 30, i, progress(record)
        ),
    )
    out = os.path.join(workdir, "report")
    shutil.rmtree(out, ignore_errors=True)  # The study's own: no figures of earlier settings.
    learner_dirs = sorted({os.path.join(workdir, learner) for learner in _LEARNERS.value})
    common.print_written(reports.write_report(learner_dirs, out), "paired.md")


if __name__ == "__main__":
    common.run(main)
