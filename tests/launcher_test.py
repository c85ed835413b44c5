"""Launcher behaviour a user meets: one-line errors with exit 2, signals, --print_config, lock."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from lasem_jax.native import conv as native_conv
from lasem_jax.storage import workdir_lock
from lasem_jax.training import loop_utils, trainer
from tests.trainer_test import TASKS, _config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--config.data.num_tasks=2", "--config.train.epochs_per_task=1"]


def _launch(*args, module="launch.train"):
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--config.train.batch_size=289"], "exceeds the 288 training images"),
        (["--config.optim.lr=-1"], "config.optim.lr=-1.0 must be a finite number > 0"),
        (["--config.model.partition=0,1,2,3"], "must be a list of groups"),
        (["--seeds=0,a"], "must be comma-separated integers"),
        (["--config.train.epoch_per_task=3"], 'Error: Did you mean "epochs_per_task"'),
        (["--config.data.name=imagenet"], "imagenet"),
    ],
    ids=["batch", "lr", "partition", "seeds", "misspelled", "dataset"],
)
def test_errors_are_one_line_with_exit_2(tmp_path, args, expected):
    """Each mistake ends with exit 2 and one `Error:` line naming it, no traceback."""
    out = _launch(f"--workdir={tmp_path / 'w'}", *SMALL, *args)
    assert out.returncode == 2, out.stderr[-2000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and expected in errors[0], out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "w" / "results.json").exists()


def test_workdir_errors_and_missing_config(tmp_path):
    """A workdir that is a file or cannot be created, and a missing config file."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    cases = [
        ([f"--workdir={afile}"], "is a file"),
        (["--workdir=/proc/lasem_test/w"], "is not a writable directory"),
        ([f"--workdir={tmp_path}", "--config=configs/missing.py"], "configs/missing.py not found"),
        (
            [f"--workdir={tmp_path}", "--config=configs/default.py:tiny", "--config.data.x=1"],
            "--config.data.x: the config has no such field",
        ),
    ]
    for args, expected in cases:
        out = _launch(*args)
        assert out.returncode == 2 and expected in out.stderr, out.stderr[-2000:]
        assert "Traceback" not in out.stderr


def test_debug_shows_the_traceback(tmp_path):
    out = _launch(f"--workdir={tmp_path}", *SMALL, "--config.optim.lr=-1", "--debug")
    assert out.returncode == 2 and "Traceback" in out.stderr


def test_an_epoch_without_minibatches_is_an_error():
    with pytest.raises(ValueError, match="trained no minibatch"):
        loop_utils.check_finite(np.zeros(0), 0, 1)


def test_print_config_lists_every_field():
    out = _launch("--print_config", "--config.train.epochs_per_task=7")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "epochs_per_task: 7" in out.stdout and "fixed_prob" in out.stdout


def _wait_for_records(path, count, proc, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"{path} did not reach {count} records; rc {proc.poll()}")


def _stop_with(sig, workdir, args):
    """Starts launch.train, sends `sig` after 3 epochs; returns (returncode, stderr)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "launch.train", f"--workdir={workdir}", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for_records(workdir / "metrics.jsonl", 3, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


SIGNAL_ARGS = [
    "--config=configs/default.py:tiny",
    "--config.data.num_tasks=2",
    "--config.train.epochs_per_task=8",
    "--config.train.checkpoint_every_epochs=0",
]


def test_sigterm_stops_after_the_epoch_and_resumes(tmp_path):
    """SIGTERM ends the epoch, checkpoints, says how to resume; the resumed run is identical."""
    stopped = tmp_path / "stopped"
    returncode, err = _stop_with(signal.SIGTERM, stopped, SIGNAL_ARGS)
    assert returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "run the same command to resume" in err and "Traceback" not in err
    assert "task 1/2 epoch   1/8" in err and "ETA" in err and "Compiling" in err
    assert f"convolutions {native_conv.path()} " in err  # The config summary names the path.
    assert os.listdir(stopped / "checkpoints") and not (stopped / "results.json").exists()
    resumed = _launch(f"--workdir={stopped}", *SIGNAL_ARGS)
    assert resumed.returncode == 0 and "Resuming from checkpoint" in resumed.stderr
    full = _launch(f"--workdir={tmp_path / 'full'}", *SIGNAL_ARGS)
    assert full.returncode == 0
    a, b = (json.loads((d / "results.json").read_text()) for d in (stopped, tmp_path / "full"))
    a.pop("train_seconds"), b.pop("train_seconds")
    assert a == b and a["conv_path"] == native_conv.path()


def test_sigint_stops_with_exit_130_and_a_checkpoint(tmp_path):
    """Ctrl-C: the same graceful stop, exit 130 (its resume is the SIGTERM test's path)."""
    returncode, err = _stop_with(signal.SIGINT, tmp_path, SIGNAL_ARGS)
    assert returncode == 128 + signal.SIGINT, err[-2000:]
    assert "Stopped at task 1, epoch" in err and "(SIGINT)" in err and "Traceback" not in err
    assert os.listdir(tmp_path / "checkpoints")


def test_one_process_per_workdir(tmp_path):
    """A held workdir is refused with the holder's pid; a killed holder's lock is taken over."""
    with workdir_lock.hold(str(tmp_path)):
        with pytest.raises(workdir_lock.WorkdirBusyError, match=f"process {os.getpid()}"):
            trainer.train_lifelong(TASKS, _config(epochs=1), workdir=str(tmp_path))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from lasem_jax.storage import workdir_lock\n"
            f"with workdir_lock.hold({str(tmp_path)!r}):\n"
            "    print('held', flush=True); time.sleep(60)",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    out = _launch(f"--workdir={tmp_path}", *SMALL)
    assert out.returncode == 2 and f"in use by process {holder.pid}" in out.stderr
    holder.kill()
    holder.wait()
    results = trainer.train_lifelong(TASKS, _config(epochs=1), workdir=str(tmp_path))
    assert results["num_tasks"] == 2


def test_benchmark_writes_json(tmp_path):
    """launch.benchmark --json writes each learner's step times, FLOP ratio and GFLOP/s."""
    out = tmp_path / "bench.json"
    args = ["--learners=hps", "--width=0.125", "--steps=2", "--repeats=1", f"--json={out}"]
    proc = _launch(*args, module="launch.benchmark")
    assert proc.returncode == 0, proc.stderr[-2000:]
    hps = json.loads(out.read_text())["hps"]
    assert hps["static_ms"] > 0 and hps["lasem_ms"] > 0
    assert hps["num_configs"] == 16 and hps["flop_ratio"] > 1
    assert hps["conv_path"] == native_conv.path()
    assert hps["gflops"] is None or hps["gflops"] > 0
