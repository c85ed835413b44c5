"""Tests for launch.sweep and the static-configuration tables in lasem_jax.analysis.reports."""

import json
import os

import pytest

from configs import default
from lasem_jax.analysis import reports
from lasem_jax.storage import results_io


def test_paper_static_configs():
    assert reports.paper_static_configs(4) == [
        "all",
        "top1",
        "top2",
        "top3",
        "bottom1",
        "bottom2",
        "bottom3",
        "alternating",
        "alternating_even",
    ]
    six = reports.paper_static_configs(6)
    assert six[0] == "all" and six[-1] == "alternating" and len(six) == 12
    assert "top5" in six and "bottom5" in six and "alternating_even" not in six
    assert reports.paper_static_configs(9) == ["all"]


def test_expand_config_names():
    assert reports.expand_config_names("all,top1,all", 4) == ["all", "top1"]
    assert reports.expand_config_names("paper", 4) == reports.paper_static_configs(4)
    every = reports.expand_config_names("every", 3)
    assert len(every) == 8 and every[0] == "111" and every[-1] == "000"
    assert reports.expand_config_names("0101, top2", 4) == ["0101", "top2"]


@pytest.mark.parametrize("spec", ["all,bogus", "top7", "010", ""])
def test_unknown_config_name_fails(spec):
    with pytest.raises(ValueError, match="configs"):
        reports.expand_config_names(spec, 4)


def test_sweep_unknown_name_fails_before_training(tmp_path):
    from launch import sweep

    with pytest.raises(ValueError, match="bogus"):
        sweep.run_sweep(default.get_config(), str(tmp_path), "all,bogus", [0])
    assert not os.listdir(tmp_path)


def _tiny_config():
    config = default.get_config()
    config.data.num_tasks = 2
    config.train.epochs_per_task = 1
    config.model.width = 0.25
    return config


def test_sweep_runs_every_config_and_seed(tmp_path):
    from launch import sweep

    config = _tiny_config()
    dirs = sweep.run_sweep(config, str(tmp_path), "all,top1", [0, 1])
    assert config.method == "lasem"  # the base config is not modified
    assert len(dirs) == 4
    for name in ("all", "top1"):
        for seed in (0, 1):
            path = tmp_path / f"static_{name}" / f"seed_{seed}" / "results.json"
            results = json.loads(path.read_text())
            assert results["method"] == "static" and results["seed"] == seed
            assert results["config"]["static_config"] == name
            assert results["num_tasks"] == 2
    # A second sweep skips the complete runs.
    stamp = os.path.getmtime(tmp_path / "static_all" / "seed_0" / "results.json")
    assert sweep.run_sweep(config, str(tmp_path), "all", [0]) == dirs[:1]
    assert os.path.getmtime(tmp_path / "static_all" / "seed_0" / "results.json") == stamp


def test_sweep_refuses_results_of_another_config(tmp_path):
    from launch import sweep

    config = _tiny_config()
    (path,) = sweep.run_sweep(config, str(tmp_path), "all", [0])
    results_path = os.path.join(path, "results.json")
    stamp = os.path.getmtime(results_path)
    changed = _tiny_config()
    changed.train.epochs_per_task = 2
    message = f"{path} holds results of a different config; use --restart"
    with pytest.raises(ValueError, match=message):
        sweep.run_sweep(changed, str(tmp_path), "all", [0])
    assert os.path.getmtime(results_path) == stamp

    assert sweep.run_sweep(changed, str(tmp_path), "all", [0], restart=True) == [path]
    with open(results_path, encoding="utf-8") as f:
        results = json.load(f)
    assert results["config"]["train"]["epochs_per_task"] == 2
    assert len(results_io.read_jsonl(os.path.join(path, "metrics.jsonl"))) == 2 * 2
    stamp = os.path.getmtime(results_path)
    sweep.run_sweep(changed, str(tmp_path), "all", [0])  # the same config: skipped
    assert os.path.getmtime(results_path) == stamp


def test_stale_results_stop_the_sweep_before_training(tmp_path):
    from launch import sweep

    config = _tiny_config()
    stale = sweep.static_run_config(config, "top1", 0)
    stale.optim.lr = 0.5
    path = tmp_path / "static_top1" / "seed_0"
    results_io.write_json_atomic(path / "results.json", {"config": stale})
    with pytest.raises(ValueError, match=f"^{path} holds results of a different config"):
        sweep.run_sweep(config, str(tmp_path), "all,top1", [0])
    assert sorted(os.listdir(tmp_path)) == ["static_top1"]  # `all` did not train
