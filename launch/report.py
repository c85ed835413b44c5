"""Summarises every results.json under some directories into a table and the paper's figures.

python -m launch.report --workdirs=/tmp/sweep,/tmp/lasem_digits --out=/tmp/report
(writes table.md, table.csv, fig4/5/8/9_<dataset>.png and curves_<setting>.png into --out:
per setting the number of seeds and mean ± 95% t confidence interval of mean peak accuracy,
mean forgetting ratio and train seconds, and the time relative to LASEM of the same learner
and dataset; a figure without data for a dataset is skipped with a log line)

Fig. 4: per learner, the static configurations' mean peak accuracy as a box, `all` and LASEM
marked. Fig. 5: fraction of tasks transferring each layer (LASEM). Fig. 8: histogram of the
configurations LASEM chose. Fig. 9: forgetting ratio of `all`, the best static configuration
(by peak accuracy) and LASEM. Curves: mean test accuracy of the tasks seen so far per epoch,
from each run's metrics.jsonl, with task boundaries dotted.
"""

from absl import app, flags, logging

from lasem_jax import reports

_WORKDIRS = flags.DEFINE_list("workdirs", None, "Directories searched for results.json.")
_OUT = flags.DEFINE_string("out", None, "Where the table and figures go.")
flags.mark_flags_as_required(["workdirs", "out"])


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
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        _log_settings(_WORKDIRS.value)
        written = reports.write_report(_WORKDIRS.value, _OUT.value)
    except ValueError as e:
        raise SystemExit(f"Error: {e}") from e
    for path in written:
        if path.endswith("table.md"):
            with open(path, encoding="utf-8") as f:
                print(f.read())
    print("\n".join(written))


if __name__ == "__main__":
    app.run(main)
