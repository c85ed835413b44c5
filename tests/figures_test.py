"""Tests for lasem_jax.analysis.figures on hand-made results.json files (Figures, not PNGs)."""

from matplotlib.container import BarContainer

from lasem_jax.analysis import figures, reports
from tests.results_utils import write_run


def _report(root):
    groups = reports.group_runs(reports.find_results([str(root)]))
    return reports.summarize(groups), groups


def test_fig4_names_brute_force_only_when_drawn(tmp_path):
    write_run(tmp_path, "lasem", 0)
    write_run(tmp_path, "static_all", 0, "static")
    write_run(tmp_path, "static_top1", 0, "static", static_config="top1")
    rows, _ = _report(tmp_path)
    ax = figures.fig4(rows).axes[0]
    assert ax.get_title() == "digits: static configs (box) vs LASEM"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["hps"]

    write_run(tmp_path, "brute_force", 0, "brute_force")
    rows, _ = _report(tmp_path)
    ax = figures.fig4(rows).axes[0]
    assert ax.get_title() == "digits: static configs (box) vs LASEM, brute force"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["all", "LASEM", "brute force"]


def test_fig4_and_fig9_keep_static_families_apart(tmp_path):
    for epochs in (3, 30):
        write_run(tmp_path, f"static_all{epochs}", 0, "static", train__epochs_per_task=epochs)
    write_run(tmp_path, "lasem30", 0, train__epochs_per_task=30)
    rows, _ = _report(tmp_path)
    ax = figures.fig4(rows).axes[0]
    names = ["hps train.epochs_per_task=3", "hps train.epochs_per_task=30"]
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    names = [n.replace(" ", "\n") for n in names]
    note = "hps train.epochs_per_task=3: no unique matching LASEM setting (see table.md)"
    assert ax.get_title() == f"digits: static configs (box) vs LASEM\n{note}"
    ax = figures.fig9(rows).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        f"{names[0]}\nall",
        f"{names[0]}\nbest static (all)",
        f"{names[1]}\nall",
        f"{names[1]}\nbest static (all)",
        f"{names[1]}\nLASEM",
    ]
    assert ax.get_title().endswith(f"\n{note}")


def test_fig9_draws_error_bars_only_with_a_ci(tmp_path):
    for seed in range(2):
        write_run(tmp_path, "lasem", seed, forgetting=0.8 + 0.1 * seed)
    write_run(tmp_path, "static_all", 0, "static")
    rows, _ = _report(tmp_path)
    bars = [c for c in figures.fig9(rows).axes[0].containers if isinstance(c, BarContainer)]
    assert [c.errorbar is not None for c in bars] == [False, False, True]  # all, best, LASEM


def test_fig5_numbers_layers_from_zero_and_fig8_counts_integers(tmp_path):
    write_run(tmp_path, "lasem", 0, chosen=[[1, 1, 0, 0], [1, 0, 0, 1], [1, 1, 1, 0]])
    rows, groups = _report(tmp_path)
    ax = figures.fig5(rows, groups).axes[0]
    assert list(ax.get_xticks()) == [0, 1, 2, 3]
    assert ax.get_title() == "digits: layers LASEM transfers (mean over seeds)"
    ax = figures.fig8(rows, groups).axes[0]
    ticks = ax.get_yticks()
    assert len(ticks) > 1 and all(t == int(t) for t in ticks)
