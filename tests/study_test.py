"""Tests for lasem_jax.experiments.study and launch.study: a paired study, trained, reported."""

import json
import os
import subprocess
import sys

import pytest

from configs import default
from lasem_jax.analysis import figures, reports
from lasem_jax.experiments import study
from tests.launcher_test import ROOT


def _tiny():
    config = default.get_config("tiny")
    config.data.num_tasks = 2
    config.train.epochs_per_task = 2
    return config


def test_study_runs_layout_and_configs(tmp_path):
    config = _tiny()
    runs = study.study_runs(
        config,
        str(tmp_path),
        [0, 3],
        learners=["hps", "dfcnn"],
        statics="all,top1",
        ablations=["mean"],
        brute_force=True,
    )
    rel = [os.path.relpath(p, tmp_path) for p, _ in runs]
    assert len(rel) == 2 * 5 * 2 and len(set(rel)) == len(rel)
    by_dir = dict(zip(rel, (c for _, c in runs), strict=True))
    mean = by_dir["dfcnn/lasem_mean/seed_3"]
    assert (mean.method, mean.learner, mean.seed, mean.em.likelihood) == (
        "lasem",
        "dfcnn",
        3,
        "mean",
    )
    top1 = by_dir["hps/static_top1/seed_0"]
    assert (top1.method, top1.static_config, top1.seed) == ("static", "top1", 0)
    assert by_dir["hps/lasem/seed_0"].em.likelihood == "product"
    assert by_dir["hps/brute_force/seed_3"].method == "brute_force"
    assert config.method == "lasem" and config.seed == 0  # not modified


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ablations": ["bogus"]}, "Unknown ablation"),
        ({"learners": ["hpss"]}, "hps, tf, dfcnn"),
        ({"learners": []}, "non-empty"),
        ({"statics": "all,bogus"}, "--statics: Unknown configuration name 'bogus'"),
    ],
)
def test_bad_study_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        study.study_runs(_tiny(), str(tmp_path), [0], **kwargs)


def test_with_overrides_names_an_unknown_field():
    cfg = study.with_overrides(_tiny(), {"em.num_m_steps": 2})
    assert cfg.em.num_m_steps == 2
    with pytest.raises(ValueError, match=r"lasem_x: the config has no field 'em.bogus'"):
        study.with_overrides(_tiny(), {"em.bogus": 1}, "lasem_x")


def test_study_trains_skips_and_reports(tmp_path):
    runs = study.study_runs(_tiny(), str(tmp_path), [0, 1], learners=["hps"], statics="all")
    assert len(study.run_study(runs)) == 4
    records = [json.loads(line) for line in open(tmp_path / "hps/lasem/seed_0/metrics.jsonl")]
    posterior = records[-1]["posterior"]  # the epoch's mean posterior over the 16 configs
    assert len(posterior) == 16 and sum(posterior) == pytest.approx(1.0, abs=1e-4)
    assert study.run_study(runs) == []  # complete runs are skipped
    written = reports.write_report([str(tmp_path / "hps")], str(tmp_path / "report"))
    names = {os.path.basename(p) for p in written}
    assert {"paired.md", "posterior_lasem_hps.png"} <= names
    rows = list(open(tmp_path / "report" / "paired.csv"))
    assert len(rows) == 2 and rows[1].startswith("lasem hps,static all hps,static,all,2,0 1,")
    changed = study.study_runs(_tiny(), str(tmp_path), [0], learners=["hps"], statics="none")
    changed[0][1].optim.lr = 0.5
    with pytest.raises(ValueError, match="holds results of a different config"):
        study.run_study(changed)


def test_posterior_figure_needs_per_epoch_posteriors(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text(json.dumps({"task": 0, "epoch": 1}) + "\n")
    results = {"seed": 0, "chosen_configs": [[1, 1, 0, 0]], "config": {}}
    assert figures.posterior_trajectories(None, [(str(run_dir), results)]) is None


def test_launcher_unknown_ablation_is_one_line(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "launch.study", f"--workdir={tmp_path}", "--ablations=bogus"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2, out.stderr[-2000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Unknown ablation(s) ['bogus']" in errors[0]
    assert not os.listdir(tmp_path)
