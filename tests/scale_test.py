"""Runs as a sharded batch axis: a sweep over 4 virtual CPU devices; resuming a batched sweep."""

import json
import os
import socket
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
    """3 configurations batched over 4 devices (one padding run) equal the runs apart."""
    batched = _sweep(tmp_path / "batched", "--seeds=0")
    apart = _sweep(tmp_path / "apart", "--nobatch_runs", "--seeds=0")
    assert len(batched) == len(apart) == 3
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


def test_two_processes_share_the_runs(tmp_path):
    """2 processes over loopback each train their runs, once; results equal one process's."""
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    small = [*SWEEP[:3], "--configs=all,none", "--seeds=0"]
    workdir = tmp_path / "two"
    job = [f"--coordinator_address=localhost:{port}", "--num_processes=2"]
    command = [sys.executable, "-m", "launch.sweep", f"--workdir={workdir}", *small, *job]
    procs = [
        subprocess.Popen(
            [*command, f"--process_id={i}"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    logs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in logs]
    trained = [
        [line for line in err.splitlines() if "mean peak accuracy" in line] for _, err in logs
    ]
    assert [len(t) for t in trained] == [1, 1] and trained[0][0][-30:] != trained[1][0][-30:]
    one = tmp_path / "one"
    subprocess.run(
        [sys.executable, "-m", "launch.sweep", f"--workdir={one}", *small],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    for name in ("static_all/seed_0", "static_none/seed_0"):
        a, b = _results(workdir / name), _results(one / name)
        assert a["chosen_configs"] == b["chosen_configs"]
        np.testing.assert_allclose(a["peak_accuracy"], b["peak_accuracy"], atol=1e-5)
        epochs = [
            json.loads(line)["global_epoch"] for line in open(workdir / name / "metrics.jsonl")
        ]
        assert epochs == sorted(set(epochs))  # each epoch recorded once


def test_data_parallel_minibatches_equal_one_device(tmp_path):
    """train.shard_batch splits each minibatch over 4 devices with the 1-device results."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    args = [*SWEEP[:2], "--config.train.epochs_per_task=1", "--config.train.batch_size=8"]
    results = []
    for name, extra in (("split", ["--config.train.shard_batch=true"]), ("one", [])):
        subprocess.run(
            [sys.executable, "-m", "launch.train", f"--workdir={tmp_path / name}", *args, *extra],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        results.append(_results(tmp_path / name))
    split, one = results
    assert (split["num_devices"], one["num_devices"]) == (4, 1)
    assert split["chosen_configs"] == one["chosen_configs"]
    for key in ("peak_accuracy", "final_accuracy"):
        np.testing.assert_allclose(split[key], one[key], atol=1e-5)
