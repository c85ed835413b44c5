"""Tests for lasem_jax.analysis.reports: settings, tables, files, on hand-made results."""

import csv
import importlib
import json
import math
import os

import pytest

from lasem_jax.analysis import reports
from tests.results_utils import write_run

PNG = b"\x89PNG\r\n\x1a\n"


def _rows(root):
    rows = reports.summarize(reports.group_runs(reports.find_results([str(root)])))
    return {r["setting"]: r for r in rows}


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    for seed, peak in enumerate((0.80, 0.82, 0.84)):
        run_dir = write_run(root, "lasem", seed, peak=peak, seconds=20.0)
        if seed == 0:
            records = [
                {"task": t, "epoch": e, "global_epoch": 2 * t + e, "test": [0.5] * (t + 1)}
                for t in range(2)
                for e in range(2)
            ]
            (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    for seed in range(3):
        write_run(root / "sweep", "static_all", seed, "static", peak=0.70 + 0.01 * seed)
    for seed in range(2):
        write_run(
            root / "sweep",
            "static_top1",
            seed,
            "static",
            peak=0.75,
            seconds=5.0,
            static_config="top1",
        )
    return root


def test_report_files_and_numbers(runs, tmp_path):
    out = tmp_path / "report"
    written = reports.write_report([str(runs)], str(out))
    names = {os.path.basename(p) for p in written}
    expected = {"table.md", "table.csv"} | {f"fig{k}_digits.png" for k in (4, 5, 8, 9)}
    expected |= {"curves_lasem_hps.png", "paired.md", "paired.csv"}
    assert names == expected
    for name in expected:
        data = (out / name).read_bytes()
        assert data and (not name.endswith(".png") or data.startswith(PNG))
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]

    rows = {r["setting"]: r for r in csv.DictReader((out / "table.csv").open())}
    assert set(rows) == {"lasem hps", "static all hps", "static top1 hps"}
    lasem = rows["lasem hps"]
    assert lasem["n"] == "3" and lasem["seeds"] == "0 1 2"
    half = 4.302653 * 0.02 / math.sqrt(3)
    assert float(lasem["mean_peak_accuracy"]) == pytest.approx(0.82, abs=1e-6)
    assert float(lasem["mean_peak_accuracy_ci"]) == pytest.approx(half, abs=1e-6)
    assert float(lasem["mean_peak_accuracy_ci"]) == pytest.approx(0.049683, abs=1e-6)
    assert lasem["train_seconds_ci"] == "0.000000"
    assert float(lasem["time_vs_lasem"]) == 1.0
    top1 = rows["static top1 hps"]
    assert top1["n"] == "2" and float(top1["time_vs_lasem"]) == pytest.approx(0.25)
    assert top1["static_config"] == "top1" and top1["lasem_setting"] == "lasem hps"
    table = (out / "table.md").read_text()
    assert "| lasem hps | 3 | 0.8200 ± 0.0497 |" in table
    assert "time / LASEM:" not in table  # every row has its LASEM setting


def test_single_seed_prints_na(tmp_path):
    write_run(tmp_path / "runs", "static_all", 0, "static", peak=0.7)
    written = reports.write_report([str(tmp_path / "runs")], str(tmp_path / "out"))
    table = (tmp_path / "out" / "table.md").read_text()
    assert "| static all hps | 1 | 0.7000 ± n/a |" in table
    assert "| n/a |\n\n- time / LASEM: no LASEM setting matches static all hps\n" in table
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


def test_settings_split_on_every_field_that_matters(tmp_path):
    write_run(tmp_path, "p05", 0, em__prior="fixed", em__fixed_prob=0.5)
    write_run(tmp_path, "p05", 1, em__prior="fixed", em__fixed_prob=0.5)
    write_run(tmp_path, "p09", 0, em__prior="fixed", em__fixed_prob=0.9)
    write_run(tmp_path, "laplace", 0, em__prior="laplace", em__fixed_prob=0.5)
    write_run(tmp_path, "s30", 0, "static", train__epochs_per_task=30)
    write_run(tmp_path, "s30", 1, "static", train__epochs_per_task=30, train__eval_chunk=64)
    write_run(tmp_path, "s3", 0, "static", train__epochs_per_task=3)
    rows = _rows(tmp_path)
    epochs = "train.epochs_per_task"
    assert {label: r["n"] for label, r in rows.items()} == {
        f"lasem hps em.fixed_prob=0.5 em.prior=fixed {epochs}=30": 2,
        f"lasem hps em.fixed_prob=0.9 em.prior=fixed {epochs}=30": 1,
        # fixed_prob matters only for the fixed prior: not named for Laplace.
        f"lasem hps em.prior=laplace {epochs}=30": 1,
        # eval_chunk cannot change results: one row of seeds 0 and 1.
        f"static all hps {epochs}=30": 2,
        f"static all hps {epochs}=3": 1,
    }
    assert rows[f"static all hps {epochs}=30"]["seeds"] == [0, 1]
    assert rows[f"static all hps {epochs}=3"]["time_note"] == (
        f"no LASEM setting matches static all hps {epochs}=3"
    )
    # Several LASEM settings match; the one with default EM fields is the comparison.
    match = rows[f"static all hps {epochs}=30"]["lasem_setting"]
    assert match == f"lasem hps em.prior=laplace {epochs}=30"


def test_other_methods_fields_do_not_split(tmp_path):
    write_run(tmp_path, "lasem", 0, den__l1=0.5, static_config="top2", darts__order=2)
    write_run(tmp_path, "lasem", 1, data__cache_dir="/elsewhere", train__keep_checkpoints=5)
    write_run(tmp_path, "static", 0, "static", em__prior="fixed", model__partition=((0, 1), (2, 3)))
    write_run(tmp_path, "static", 1, "static", model__tf_ortho_weight=0.5)  # TF only
    write_run(tmp_path, "prognn", 0, "prognn", "none")
    write_run(tmp_path, "prognn", 1, "prognn", "none", config_learner="dfcnn")  # unused
    write_run(tmp_path, "darts", 0, "darts", "hps", darts__order=1)
    write_run(tmp_path, "darts", 1, "darts", "hps", darts__order=2)
    rows = _rows(tmp_path)
    assert {label: r["n"] for label, r in rows.items()} == {
        "darts hps darts.order=1": 1,
        "darts hps darts.order=2": 1,
        "lasem hps": 2,
        "prognn": 2,
        "static all hps": 2,
    }


def test_time_vs_lasem_uses_the_matching_setting(tmp_path):
    for epochs, seconds in ((3, 4.0), (30, 40.0)):
        write_run(tmp_path, f"lasem{epochs}", 0, seconds=seconds, train__epochs_per_task=epochs)
        write_run(tmp_path, f"static{epochs}", 0, "static", train__epochs_per_task=epochs)
    write_run(tmp_path, "static_lr", 0, "static", optim__lr=0.5)
    write_run(tmp_path, "prognn", 0, "prognn", "none", seconds=8.0, train__epochs_per_task=3)
    rows = _rows(tmp_path)
    assert rows["static all hps optim.lr=0.5 train.epochs_per_task=30"]["time_vs_lasem"] is None
    assert rows["static all hps optim.lr=0.001 train.epochs_per_task=3"]["time_vs_lasem"] == 2.5
    static30 = rows["static all hps optim.lr=0.001 train.epochs_per_task=30"]
    assert static30["time_vs_lasem"] == 0.25
    assert static30["lasem_setting"] == "lasem hps optim.lr=0.001 train.epochs_per_task=30"
    assert rows["prognn optim.lr=0.001 train.epochs_per_task=3"]["time_vs_lasem"] == 2.0
    table = reports.format_markdown(list(rows.values()))
    note = "no LASEM setting matches static all hps optim.lr=0.5 train.epochs_per_task=30"
    assert f"\n- time / LASEM: {note}\n" in table
    assert table.count("- time / LASEM:") == 1


def test_ambiguous_lasem_match_gives_no_time(tmp_path):
    write_run(tmp_path, "mean", 0, em__likelihood="mean")
    write_run(tmp_path, "mean10", 0, em__likelihood="mean", em__prior_init_count=10.0)
    write_run(tmp_path, "static", 0, "static")
    row = _rows(tmp_path)["static all hps"]
    assert row["time_vs_lasem"] is None and row["lasem_setting"] is None
    assert row["time_note"] == (
        "several LASEM settings match static all hps: "
        "lasem hps em.prior_init_count=1.0; lasem hps em.prior_init_count=10.0"
    )
    csv_rows = list(csv.DictReader(reports.format_csv(list(_rows(tmp_path).values())).splitlines()))
    assert [r["em.prior_init_count"] for r in csv_rows] == ["1.0", "10.0", ""]


def test_ablations_beside_the_default_lasem_match_the_default(tmp_path):
    """A study's LASEM ablations: statics are compared with the LASEM of default EM fields."""
    write_run(tmp_path, "product", 0, em__likelihood="product", seconds=20.0)
    write_run(tmp_path, "mean", 0, em__likelihood="mean")
    write_run(tmp_path, "static", 0, "static", seconds=5.0)
    row = _rows(tmp_path)["static all hps"]
    assert row["lasem_setting"] == "lasem hps em.likelihood=product"
    assert row["time_vs_lasem"] == 0.25 and row["time_note"] is None


def test_methods_without_learner_are_timed_against_lasem_hps(runs):
    """ProgNN-like runs (learner "none") get their time relative to LASEM HPS."""
    write_run(runs, "lasem_dfcnn", 0, learner="dfcnn", seconds=1.0)
    for seed in range(2):
        write_run(runs, "prognn", seed, "prognn", "none", peak=0.9, seconds=40.0)
    assert _rows(runs)["prognn"]["time_vs_lasem"] == pytest.approx(2.0)


def test_fig6_commands_give_one_row_per_probability(tmp_path):
    """The README's Fig. 6 runs: office_home_fixed_prior.py:<P> and LASEM DF-CNN."""
    fixed = importlib.import_module("configs.office_home_fixed_prior")
    lasem = importlib.import_module("configs.office_home_lasem").get_config()
    probs = ("0.5", "0.6", "0.7", "0.8", "0.9", "1.0")
    for p in probs:
        for seed in range(2):
            write_run(tmp_path, f"p{p}", seed, learner="dfcnn", config=fixed.get_config(p))
    write_run(tmp_path, "lasem", 0, learner="dfcnn", config=lasem)
    rows = _rows(tmp_path)
    expected = {f"lasem dfcnn em.fixed_prob={p} em.prior=fixed" for p in probs}
    assert set(rows) == expected | {"lasem dfcnn em.prior=laplace"}
    assert all(rows[label]["n"] == 2 for label in expected)
    assert all(r["dataset"] == "office_home" for r in rows.values())


def test_several_datasets_and_file_names(tmp_path):
    write_run(tmp_path, "a", 0, model__partition=((0, 1), (2, 3)))
    write_run(tmp_path, "b", 0, model__partition=((0,), (1, 2, 3)))
    write_run(tmp_path, "c", 0, data__num_tasks=3)
    groups = reports.group_runs(reports.find_results([str(tmp_path)]))
    labels = {s.label: s.file_label for s in groups}
    assert labels == {
        "lasem hps digits_3": "lasem_hps_digits_3",
        "lasem hps digits_5 model.partition=[[0],[1,2,3]]": (
            "lasem_hps_digits_5_model.partition=--0-,-1,2,3--"
        ),
        "lasem hps digits_5 model.partition=[[0,1],[2,3]]": (
            "lasem_hps_digits_5_model.partition=--0,1-,-2,3--"
        ),
    }


def test_results_without_a_field_form_their_own_setting(tmp_path):
    write_run(tmp_path, "new", 0)
    old = write_run(tmp_path, "old", 0) / "results.json"
    results = json.loads(old.read_text())
    del results["config"]["em"]["num_m_steps"]  # written before the field existed
    old.write_text(json.dumps(results))
    assert set(_rows(tmp_path)) == {"lasem hps em.num_m_steps=1", "lasem hps em.num_m_steps=absent"}
