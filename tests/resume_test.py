"""Tests of checkpoints and resume: kill anywhere, resume, and get the uninterrupted results."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from lasem_jax.engine import lockstep
from lasem_jax.storage import checkpoint, tree_io
from lasem_jax.training import trainer
from tests.trainer_test import _config, _task

TASKS = [_task(0), _task(1)]
EPOCHS = 3


class Crash(Exception):
    """Stands in for a process dying."""


def _crash_after(n):
    """An on_epoch callback that 'kills' the run after its n-th epoch (counted from 1)."""
    seen = []

    def callback(record):
        seen.append(record)
        if len(seen) == n:
            raise Crash

    return callback


def _resumable_config():
    c = _config(epochs=EPOCHS)
    c.train.checkpoint_every_epochs = 2
    return c


def _without_time(results):
    return {k: v for k, v in results.items() if k != "train_seconds"}


def _read(workdir, name):
    with open(os.path.join(workdir, name)) as f:
        return f.read()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run: results and metrics file."""
    workdir = str(tmp_path_factory.mktemp("uninterrupted"))
    results = trainer.train_lifelong(TASKS, _resumable_config(), workdir=workdir)
    return _without_time(results), _read(workdir, "metrics.jsonl")


def _run_with_crashes(workdir, crash_points):
    """Runs, 'killing' the process after each given epoch count, then runs to the end."""
    for n in crash_points:
        with pytest.raises(Crash):
            trainer.train_lifelong(
                TASKS, _resumable_config(), workdir=workdir, on_epoch=_crash_after(n)
            )
    return trainer.train_lifelong(TASKS, _resumable_config(), workdir=workdir)


@pytest.mark.parametrize(
    "crash_points",
    [(EPOCHS,), (EPOCHS + 2,), (EPOCHS + 1,), (2, 3)],
    ids=["end_of_task", "mid_task_after_checkpoint", "mid_task_replays_epochs", "twice"],
)
def test_resume_equals_uninterrupted(tmp_path, reference, crash_points):
    """Killed at a task end, mid-task, or twice, the resumed run equals the uninterrupted one."""
    results = _run_with_crashes(str(tmp_path), crash_points)
    assert _without_time(results) == reference[0]
    assert _read(tmp_path, "metrics.jsonl") == reference[1]
    assert (
        json.loads(_read(tmp_path, "results.json"))["chosen_configs"] == results["chosen_configs"]
    )


def test_interrupted_checkpoint_write_is_ignored(tmp_path, reference, monkeypatch):
    """A checkpoint whose write dies before its rename is skipped; the older one is used."""
    workdir = str(tmp_path)
    real_replace = os.replace
    calls = []

    def dying_replace(src, dst):
        if src.endswith(".partial"):
            calls.append(src)
            if len(calls) == 2:  # The second checkpoint write dies before it completes.
                raise Crash
        return real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", dying_replace)
    with pytest.raises(Crash):
        trainer.train_lifelong(TASKS, _resumable_config(), workdir=workdir)
    monkeypatch.undo()
    names = os.listdir(os.path.join(workdir, "checkpoints"))
    assert any(n.endswith(".partial") for n in names)
    results = trainer.train_lifelong(TASKS, _resumable_config(), workdir=workdir)
    assert _without_time(results) == reference[0]


def test_corrupt_newest_checkpoint_falls_back_with_warning(tmp_path, reference, monkeypatch):
    """An unreadable newest checkpoint is ignored with a warning and the previous one used."""
    workdir = str(tmp_path)
    with pytest.raises(Crash):
        trainer.train_lifelong(
            TASKS, _resumable_config(), workdir=workdir, on_epoch=_crash_after(EPOCHS + 2)
        )
    store = checkpoint.CheckpointStore(os.path.join(workdir, "checkpoints"))
    newest = store._path(store.steps()[-1])
    shutil.rmtree(os.path.join(newest, tree_io.ARRAYS))
    with open(os.path.join(newest, tree_io.SKELETON), "w") as f:
        f.write("{not json")
    warnings = []
    monkeypatch.setattr(checkpoint.logging, "warning", lambda msg, *a: warnings.append(msg % a))
    results = trainer.train_lifelong(TASKS, _resumable_config(), workdir=workdir)
    assert any("unreadable checkpoint" in w for w in warnings)
    assert _without_time(results) == reference[0]


def test_restart_discards_checkpoints(tmp_path, reference):
    """restart=True starts over even where a checkpoint of another config exists."""
    workdir = str(tmp_path)
    other = _resumable_config()
    other.seed = 5
    with pytest.raises(Crash):
        trainer.train_lifelong(TASKS, other, workdir=workdir, on_epoch=_crash_after(2))
    with pytest.raises(ValueError, match="different config"):
        trainer.train_lifelong(TASKS, _resumable_config(), workdir=workdir)
    results = trainer.train_lifelong(TASKS, _resumable_config(), workdir=workdir, restart=True)
    assert _without_time(results) == reference[0]


def test_non_finite_loss_stops_with_task_epoch_step(tmp_path):
    """A diverging run (lr 1e30) stops naming task, epoch and step, and writes no results."""
    config = _resumable_config()
    config.optim.lr = 1e30
    with pytest.raises(FloatingPointError, match=r"task 0, epoch 1, step \d+"):
        trainer.train_lifelong(TASKS, config, workdir=str(tmp_path))
    assert checkpoint.CheckpointStore(os.path.join(tmp_path, "checkpoints")).steps() == []
    assert not os.path.exists(os.path.join(tmp_path, "results.json"))


def test_non_finite_loss_keeps_last_good_checkpoint(tmp_path, reference, monkeypatch):
    """When an epoch diverges after a checkpoint, that checkpoint survives and still resumes."""
    workdir = str(tmp_path)
    with pytest.raises(Crash):
        trainer.train_lifelong(
            TASKS, _resumable_config(), workdir=workdir, on_epoch=_crash_after(EPOCHS)
        )
    store = checkpoint.CheckpointStore(os.path.join(workdir, "checkpoints"))
    before = store.steps()
    real_epoch = lockstep.jitted_train_epoch

    def diverging_epoch(*args):
        state, out = real_epoch(*args)
        return state, {**out, "losses": out["losses"].at[1].set(float("nan"))}

    monkeypatch.setattr(lockstep, "jitted_train_epoch", diverging_epoch)
    with pytest.raises(FloatingPointError, match=r"task 1, epoch 1, step 1"):
        trainer.train_lifelong(TASKS, _resumable_config(), workdir=workdir)
    assert store.steps() == before == [2, EPOCHS]
    monkeypatch.undo()
    results = trainer.train_lifelong(TASKS, _resumable_config(), workdir=workdir)
    assert _without_time(results) == reference[0]


def test_bad_config_fields_name_the_field():
    """Unknown learner, architecture, likelihood, prior and a bad partition fail clearly."""
    cases = [
        ("learner", "magic", "Unknown learner 'magic'"),
        ("model.arch", "vgg", "Unknown architecture 'vgg'"),
        ("em.likelihood", "sum", r"config\.em\.likelihood='sum'"),
        ("em.prior", "flat", r"config\.em\.prior='flat'"),
        ("model.partition", ((0, 1), (1, 2, 3)), "overlap at layer 1"),
    ]
    for field, value, message in cases:
        config = _config()
        *path, last = field.split(".")
        node = config
        for part in path:
            node = node[part]
        node[last] = value
        with pytest.raises(ValueError, match=message):
            trainer.train_lifelong(TASKS, config)


def _launch(workdir, *extra):
    cmd = [
        sys.executable, "-m", "launch.train", f"--workdir={workdir}",
        "--config.data.num_tasks=2", "--config.train.epochs_per_task=3",
        "--config.model.width=0.25", "--config.train.checkpoint_every_epochs=1", *extra,
    ]  # fmt: skip
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return subprocess.Popen(cmd, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_sigkill_and_relaunch_matches_uninterrupted(tmp_path):
    """launch.train killed with SIGKILL after a checkpoint, then relaunched, ends identically."""
    full, killed = tmp_path / "full", tmp_path / "killed"
    proc = _launch(killed)
    checkpoints = killed / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if checkpoints.is_dir() and [n for n in os.listdir(checkpoints) if n.isdigit()]:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "results.json").exists()
    relaunched = _launch(killed)
    _, err = relaunched.communicate(timeout=300)
    assert relaunched.returncode == 0, err.decode()[-2000:]
    assert b"Resuming from checkpoint" in err
    reference = _launch(full)
    reference.communicate(timeout=300)
    a = _without_time(json.loads((killed / "results.json").read_text()))
    b = _without_time(json.loads((full / "results.json").read_text()))
    assert a == b
