"""Runs as a sharded batch axis: a sweep over 4 virtual CPU devices; resuming a batched sweep."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from configs import default
from launch import sweep
from tests.resume_test import Crash, _without_time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWEEP = [
    "--config=configs/default.py:tiny",
    "--config.data.num_tasks=2",
    "--config.train.epochs_per_task=2",
    "--configs=all,none,top1",
    "--seeds=0,1",
]


def _sweep(workdir, *extra):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    proc = subprocess.run(
        [sys.executable, "-m", "launch.sweep", f"--workdir={workdir}", *SWEEP, *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.split()


def _results(path):
    with open(os.path.join(path, "results.json")) as f:
        return json.load(f)


def test_sweep_sharded_over_4_devices_equals_one_after_another(tmp_path):
    """3 configurations x 2 seeds batched over 4 devices equal the runs one after another."""
    batched = _sweep(tmp_path / "batched")
    apart = _sweep(tmp_path / "apart", "--nobatch_runs")
    assert len(batched) == len(apart) == 6
    for a, b in zip(batched, apart, strict=True):
        ra, rb = _results(a), _results(b)
        assert (ra["num_devices"], rb["num_devices"]) == (4, 1)
        assert ra["chosen_configs"] == rb["chosen_configs"]
        for key in ("peak_accuracy", "final_accuracy"):
            np.testing.assert_allclose(ra[key], rb[key], atol=1e-5, err_msg=f"{a}: {key}")


def test_batched_sweep_resumes_after_a_kill(tmp_path):
    """A batched sweep killed mid-way resumes every run and ends as an uninterrupted one."""
    config = default.get_config("tiny")
    config.data.num_tasks = 2
    full = sweep.run_sweep(config, str(tmp_path / "full"), "all,top1", [0])
    epochs = []

    def crash(i, record):
        epochs.append((i, record["epoch"]))
        if len(epochs) == 5:
            raise Crash

    killed = str(tmp_path / "killed")
    with pytest.raises(Crash):
        sweep.run_sweep(config, killed, "all,top1", [0], on_epoch=crash)
    resumed = sweep.run_sweep(config, killed, "all,top1", [0])
    for a, b in zip(full, resumed, strict=True):
        assert _without_time(_results(a)) == _without_time(_results(b))
