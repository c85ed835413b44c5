"""Summarises every results.json under some directories into a table and the paper's figures.

python -m launch.report --workdirs=/tmp/sweep,/tmp/lasem_digits --out=/tmp/report
(writes table.md, table.csv, paired.md, paired.csv, fig4/5/8/9_<dataset>.png,
curves_<setting>.png and posterior_<setting>.png into --out; a figure without data for a
dataset is skipped with a log line)

Runs are averaged only within a setting: equal in every config field that can change results
(all but the seed, file locations, evaluation chunk and checkpoint cadence, and the sections of
other methods; see lasem_jax/report_settings.py). Each row is labelled by its method, learner,
static configuration and the fields that differ between the settings found, e.g.
`lasem dfcnn em.prior=fixed em.fixed_prob=0.5`; per setting the number of seeds and mean ± 95%
t confidence interval of mean peak accuracy, mean forgetting ratio, BWT, mean forgetting, mean
forward transfer and train seconds, and the
time relative to the matching LASEM setting (equal in every field but the method-specific
ones; LASEM HPS for methods without a learner; of several, the one with default `em.*` and
`model.partition` fields). Without exactly one match the time is n/a and a note below the
table says why.

Fig. 4: per static family (static settings equal but for the configuration), the static
configurations' mean peak accuracy as a box, `all`, the matching LASEM and brute force marked.
Fig. 5: fraction of tasks transferring each layer, 0 = input side (LASEM). Fig. 8: histogram of
the configurations LASEM chose. Fig. 9: forgetting ratio of `all`, the best static
configuration (by peak accuracy) and the matching LASEM. Curves: mean test accuracy of the tasks
seen so far per epoch, from each run's metrics.jsonl, with task boundaries dotted. Posterior
(LASEM): per task of the lowest seed, each layer's marginal transfer probability per epoch.
Paired (paired.md / .csv): per LASEM setting, LASEM minus every comparable setting (statics,
brute force, other LASEM settings) paired by seed, mean ± 95% t-interval, peak and final
accuracy (lasem_jax/paired.py).
"""

from absl import flags, logging

from lasem_jax.analysis import reports
from launch import common

_WORKDIRS = flags.DEFINE_list("workdirs", None, "Directories searched for results.json.")
_OUT = flags.DEFINE_string("out", None, "Where the table and figures go.")


def _log_settings(workdirs: list[str]) -> None:
    """Logs how many runs each setting has and where they are."""
    groups = reports.group_runs(reports.find_results(workdirs))
    for setting, runs in groups.items():
        seeds = sorted(r.get("seed") for _, r in runs)
        logging.info("%s: %d runs, seeds %s", setting.label, len(runs), seeds)
        for run_dir, _ in runs:
            logging.debug("  %s", run_dir)


def main(argv: list[str]) -> None:
    """Writes the report and prints the Markdown table and the files written."""
    if len(argv) > 1:
        common.fail(f"unexpected arguments {argv[1:]}; flags look like --workdirs=A,B.")
    if not _WORKDIRS.value or not _OUT.value:
        common.fail("--workdirs (directories searched for results.json) and --out are required.")
    _log_settings(_WORKDIRS.value)
    common.print_written(reports.write_report(_WORKDIRS.value, _OUT.value), "table.md")


if __name__ == "__main__":
    common.run(main)
