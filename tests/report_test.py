"""Tests for lasem_jax.reports.write_report on hand-made results.json files."""

import csv
import json
import math
import os

import pytest

from lasem_jax import reports

PNG = b"\x89PNG\r\n\x1a\n"


def _write_run(
    root, name, seed, method, peak, static_config="all", seconds=10.0, chosen=None, learner="hps"
):
    run_dir = root / name / f"seed_{seed}"
    run_dir.mkdir(parents=True)
    chosen = chosen or [[1, 1, 0, 0], [1, 0, 0, 1]]
    results = {
        "method": method,
        "learner": learner,
        "dataset": "digits",
        "num_tasks": 2,
        "seed": seed,
        "mean_peak_accuracy": peak,
        "mean_forgetting_ratio": 0.9 + 0.01 * seed,
        "train_seconds": seconds,
        "chosen_configs": chosen,
        "transfer_fraction_per_layer": [sum(c) / len(chosen) for c in zip(*chosen, strict=True)],
        "config": {
            "static_config": static_config,
            "model": {"partition": None},
            "em": {"prior": "laplace"},
        },
    }
    (run_dir / "results.json").write_text(json.dumps(results))
    return run_dir


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    for seed, peak in enumerate((0.80, 0.82, 0.84)):
        run_dir = _write_run(root, "lasem", seed, "lasem", peak, seconds=20.0)
        if seed == 0:
            records = [
                {"task": t, "epoch": e, "global_epoch": 2 * t + e, "test": [0.5] * (t + 1)}
                for t in range(2)
                for e in range(2)
            ]
            (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    for seed in range(3):
        _write_run(root / "sweep", "static_all", seed, "static", 0.70 + 0.01 * seed)
    for seed in range(2):
        _write_run(root / "sweep", "static_top1", seed, "static", 0.75, "top1", seconds=5.0)
    return root


def test_report_files_and_numbers(runs, tmp_path):
    out = tmp_path / "report"
    written = reports.write_report([str(runs)], str(out))
    names = {os.path.basename(p) for p in written}
    expected = {"table.md", "table.csv"} | {f"fig{k}_digits.png" for k in (4, 5, 8, 9)}
    expected.add("curves_lasem_hps_digits_laplace.png")
    assert names == expected
    for name in expected:
        data = (out / name).read_bytes()
        assert data and (not name.endswith(".png") or data.startswith(PNG))
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]

    rows = {r["setting"]: r for r in csv.DictReader((out / "table.csv").open())}
    assert set(rows) == {
        "lasem_hps_digits_laplace",
        "static_hps_digits_all",
        "static_hps_digits_top1",
    }
    lasem = rows["lasem_hps_digits_laplace"]
    assert lasem["n"] == "3" and lasem["seeds"] == "0 1 2"
    half = 4.302653 * 0.02 / math.sqrt(3)
    assert float(lasem["mean_peak_accuracy"]) == pytest.approx(0.82, abs=1e-6)
    assert float(lasem["mean_peak_accuracy_ci"]) == pytest.approx(half, abs=1e-6)
    assert float(lasem["mean_peak_accuracy_ci"]) == pytest.approx(0.049683, abs=1e-6)
    assert lasem["train_seconds_ci"] == "0.000000"
    assert float(lasem["time_vs_lasem"]) == 1.0
    top1 = rows["static_hps_digits_top1"]
    assert top1["n"] == "2" and float(top1["time_vs_lasem"]) == pytest.approx(0.25)
    assert top1["static_config"] == "top1"
    table = (out / "table.md").read_text()
    assert "| lasem_hps_digits_laplace | 3 | 0.8200 ± 0.0497 |" in table


def test_single_seed_prints_na(tmp_path):
    _write_run(tmp_path / "runs", "static_all", 0, "static", 0.7)
    written = reports.write_report([str(tmp_path / "runs")], str(tmp_path / "out"))
    table = (tmp_path / "out" / "table.md").read_text()
    assert "| static_hps_digits_all | 1 | 0.7000 ± n/a |" in table
    assert table.rstrip().endswith("| n/a |")  # no LASEM setting to compare times with
    names = {os.path.basename(p) for p in written}
    # No LASEM runs and no metrics.jsonl: those figures are skipped.
    assert names == {"table.md", "table.csv", "fig4_digits.png", "fig9_digits.png"}


def test_mean_ci():
    assert reports.mean_ci([0.5]) == (0.5, None, 1)
    mean, half, n = reports.mean_ci([0.80, 0.82, 0.84, None])
    assert n == 3 and mean == pytest.approx(0.82) and half == pytest.approx(0.0496827, abs=1e-6)


def test_no_results_fails(tmp_path):
    with pytest.raises(ValueError, match=r"No results\.json"):
        reports.write_report([str(tmp_path)], str(tmp_path / "out"))


def test_methods_without_learner_are_timed_against_lasem_hps(runs, tmp_path):
    """ProgNN-like runs (learner "none") get their time relative to LASEM HPS."""
    for seed in range(2):
        _write_run(runs, "prognn", seed, "prognn", 0.9, seconds=40.0, learner="none")
    rows = {
        r["setting"]: r
        for r in reports.summarize(reports.group_runs(reports.find_results([str(runs)])))
    }
    assert rows["prognn_none_digits"]["time_vs_lasem"] == pytest.approx(2.0)
