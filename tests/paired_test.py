"""Tests for lasem_jax.analysis.paired: LASEM minus each comparable setting, paired by seed."""

import csv
import json
import math
import os

import pytest
from scipy import stats

from lasem_jax.analysis import paired, reports
from tests.results_utils import write_run


def _set_final(run_dir, final):
    path = run_dir / "results.json"
    results = json.loads(path.read_text())
    results["mean_final_accuracy"] = final
    path.write_text(json.dumps(results))


def _pairs(root):
    groups = reports.group_runs(reports.find_results([str(root)]))
    return paired.paired_rows(groups)


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "runs"
    for seed, peak in enumerate((0.80, 0.82, 0.84)):
        _set_final(write_run(root, "lasem", seed, peak=peak), peak - 0.01)
    for seed, peak in enumerate((0.70, 0.71, 0.72)):
        _set_final(write_run(root, "static_all", seed, "static", peak=peak), peak - 0.10)
    for seed in (1, 2, 3):  # Seed 3 has no LASEM partner; seed 0 has no static partner.
        write_run(root, "static_top1", seed, "static", peak=0.9, static_config="top1")
    for seed in range(3):  # Another learner: another base, never paired with LASEM HPS.
        write_run(root, "static_all_dfcnn", seed, "static", "dfcnn", peak=0.5)
    return root


def test_differences_are_paired_by_seed(root):
    rows = _pairs(root)
    assert [(r["lasem"], r["other"]) for r in rows] == [
        ("lasem hps", "static top1 hps"),  # best peak first
        ("lasem hps", "static all hps"),
    ]
    top1, everything = rows
    assert top1["seeds"] == [1, 2] and top1["n"] == 2
    assert top1["peak_diff"] == pytest.approx(((0.82 - 0.9) + (0.84 - 0.9)) / 2)
    assert top1["peak_lasem"] == pytest.approx(0.83)  # over the paired seeds only
    assert math.isnan(top1["final_diff"]) and top1["final_diff_ci"] is None  # no finals
    assert everything["n"] == 3
    assert everything["peak_diff"] == pytest.approx(0.11)
    half = stats.t.ppf(0.975, 2) * 0.01 / math.sqrt(3)
    assert everything["peak_diff_ci"] == pytest.approx(half)
    assert everything["final_diff"] == pytest.approx(0.20)
    assert everything["final_diff_ci"] == pytest.approx(half)
    assert paired.verdict(everything) == "above"
    assert paired.verdict(top1) == "tie"  # -0.07 ± t(1) * 0.01 = ±0.127 with 2 seeds


def test_verdict_edges():
    row = {"peak_diff": 0.01, "peak_diff_ci": 0.02}
    assert paired.verdict(row) == "tie"
    assert paired.verdict({"peak_diff": -0.03, "peak_diff_ci": 0.02}) == "below"
    assert paired.verdict({"peak_diff": 0.03, "peak_diff_ci": None}) == "n/a"


def test_lasem_settings_pair_with_each_other(tmp_path):
    root = tmp_path / "runs"
    for seed in range(2):
        write_run(root, "lasem", seed, peak=0.8 + 0.01 * seed)
        write_run(root, "lasem_mean", seed, peak=0.7, em__likelihood="mean")
    rows = _pairs(root)
    labels = {(r["lasem"], r["other"]) for r in rows}
    assert labels == {
        ("lasem hps em.likelihood=product", "lasem hps em.likelihood=mean"),
        ("lasem hps em.likelihood=mean", "lasem hps em.likelihood=product"),
    }
    mean_first = next(r for r in rows if r["lasem"].endswith("mean"))
    assert mean_first["peak_diff"] == pytest.approx(-0.105)


def test_report_writes_the_paired_files(root, tmp_path):
    out = tmp_path / "out"
    reports.write_report([str(root)], str(out))
    text = (out / "paired.md").read_text()
    assert "**lasem hps** (3 seeds: mean peak 0.8200, mean final 0.8100)" in text
    assert "| static all hps | 3 | 0.7100 | +0.1100 ± 0.0248 | above | 0.6100 |" in text
    assert "| static top1 hps | 2 | 0.9000 | -0.0700 ± 0.1271 | tie | n/a | n/a | n/a |" in text
    rows = list(csv.DictReader((out / "paired.csv").open()))
    assert [r["other"] for r in rows] == ["static top1 hps", "static all hps"]
    assert rows[0]["seeds"] == "1 2" and rows[0]["final_diff"] == "n/a"
    assert float(rows[1]["peak_diff"]) == pytest.approx(0.11)


def test_no_lasem_no_paired_files(tmp_path):
    write_run(tmp_path / "runs", "static_all", 0, "static")
    written = reports.write_report([str(tmp_path / "runs")], str(tmp_path / "out"))
    assert not [p for p in written if os.path.basename(p).startswith("paired")]


def test_headline_against_the_best_static_and_all(root, tmp_path):
    (entry,) = paired.headline(_pairs(root))
    assert entry["lasem"] == "lasem hps" and entry["lasem_n"] == 3
    assert entry["best"]["other"] == "static top1 hps"  # highest mean peak, 0.9
    assert entry["all"]["other"] == "static all hps" and entry["brute_force"] is None
    reports.write_report([str(root)], str(tmp_path / "out"))
    text = (tmp_path / "out" / "paired.md").read_text()
    line = "| lasem hps | 3 | 0.8200 | 0.8100 | top1 | -0.0700 ± 0.1271 | n/a | +0.1100 ± 0.0248 |"
    assert line + " +0.2000 ± 0.0248 | n/a |" in text
