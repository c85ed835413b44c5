"""Tests for launch.data_info (run as a subprocess, like a user would)."""

import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def _run(*args):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return subprocess.run(
        [sys.executable, "-m", "launch.data_info", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_prints_a_line_per_task():
    proc = _run("--config=configs/default.py")
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("task ")]
    assert len(lines) == 5
    assert all("num_classes 3" in line and "train " in line for line in lines)
    assert proc.stdout.count("mean ") == 5


def test_error_exits_nonzero_with_message(tmp_path):
    proc = _run(
        "--config=configs/office_home_lasem.py", f"--config.data.manual_dir={tmp_path / 'x'}"
    )
    assert proc.returncode != 0
    assert "office_home" in proc.stderr and "manual_dir" in proc.stderr
