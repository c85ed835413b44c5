"""Checkpoints cost the same at every epoch, resume from metrics.jsonl, write in the background."""

import json
import os
import shutil
import signal
import threading
import time

import numpy as np
import pytest

import lasem_jax
from lasem_jax import interrupt
from lasem_jax.storage import checkpoint, results_io, tree_io
from lasem_jax.training import trainer
from tests.resume_test import Crash, _crash_after, _without_time
from tests.trainer_test import _config, _task

TASKS = [_task(0), _task(1)]
METHODS = ("lasem", "single_network")


def _tiny(method, epochs=2, every=1):
    config = _config(method, epochs=epochs)
    config.train.checkpoint_every_epochs = every
    config.train.keep_checkpoints = 100
    return config


def _skeleton(workdir, step):
    path = os.path.join(workdir, "checkpoints", f"{step:010d}", tree_io.SKELETON)
    with open(path) as f:
        return f.read()


@pytest.mark.parametrize("method", METHODS)
def test_checkpoint_json_does_not_grow_with_epochs(tmp_path, method):
    """The checkpoints after 2 and 6 epochs differ only in a few digits (records stay out)."""
    trainer.train_lifelong(TASKS[:1], _tiny(method, epochs=6, every=2), workdir=str(tmp_path))
    early, late = _skeleton(tmp_path, 2), _skeleton(tmp_path, 6)
    assert abs(len(late) - len(early)) <= 16
    meta_early, meta_late = json.loads(early)["meta"], json.loads(late)["meta"]
    assert meta_late["num_records"] == 6 and "records" not in meta_late
    counters = ("epoch", "global_epoch", "num_records", "elapsed")
    for meta in (meta_early, meta_late):
        for name in counters:
            meta.pop(name)
    assert meta_early == meta_late


@pytest.fixture(scope="module")
def crashed(tmp_path_factory):
    """A LASEM workdir 'killed' after 3 epochs (checkpoint at 3); the uninterrupted results."""
    config, full_dir = _tiny("lasem"), tmp_path_factory.mktemp("full")
    full = trainer.train_lifelong(TASKS, config, workdir=str(full_dir))
    workdir = str(tmp_path_factory.mktemp("crashed"))
    with pytest.raises(Crash):
        trainer.train_lifelong(TASKS, config, workdir=workdir, on_epoch=_crash_after(3))
    return workdir, _without_time(full), results_io.read_jsonl(full_dir / "metrics.jsonl")


def _edit_metrics(workdir, edit):
    path = os.path.join(workdir, "metrics.jsonl")
    with open(path) as f:
        lines = f.read().splitlines(keepends=True)
    os.remove(path)
    text = edit(lines)
    if text is not None:
        with open(path, "w") as f:
            f.write(text)


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda lines: None, "is missing"),
        (lambda lines: "".join(lines[:2]), "holds 2 records, fewer than 3"),
        (lambda lines: "".join(lines[:1]) + lines[1][:20] + "\n" + lines[2], ":2: invalid JSON"),
        (lambda lines: "".join(lines[1:]) + lines[0], "not the checkpoint's task 1, global"),
    ],
    ids=["missing", "truncated", "cut_line", "other_run"],
)
def test_resume_with_damaged_metrics_raises_load_error(tmp_path, crashed, edit, problem):
    """A metrics.jsonl that lacks the checkpoint's records stops the resume with the fix."""
    workdir = shutil.copytree(crashed[0], tmp_path / "w")
    _edit_metrics(workdir, edit)
    with pytest.raises(lasem_jax.LoadError, match="--restart") as error:
        trainer.train_lifelong(TASKS, _tiny("lasem"), workdir=str(workdir))
    assert "metrics.jsonl" in str(error.value) and problem in str(error.value)
    assert not os.path.exists(workdir / "results.json")


def test_records_after_the_checkpoint_may_be_cut(tmp_path, crashed):
    """Lines after the checkpoint's records are not read: a line cut by a crash is harmless."""
    workdir = shutil.copytree(crashed[0], tmp_path / "w")
    _edit_metrics(workdir, lambda lines: "".join(lines) + '{"task": 1, "ep')
    results = trainer.train_lifelong(TASKS, _tiny("lasem"), workdir=str(workdir))
    assert _without_time(results) == crashed[1]


def test_checkpoint_holding_its_records_resumes_twice(tmp_path, crashed):
    """A checkpoint with its records inside (the earlier layout) resumes, and so does the next.

    Both resumes end with the uninterrupted run's results and records (prior history included).
    """
    workdir = shutil.copytree(crashed[0], tmp_path / "w")
    path = workdir / "checkpoints" / f"{3:010d}"
    tree, meta = tree_io.load(str(path))
    records = results_io.read_jsonl(workdir / "metrics.jsonl", limit=meta.pop("num_records"))
    meta["prior_history"] = [[r.pop("prior") for r in records if r["task"] == t] for t in (0, 1)]
    meta["records"] = records
    tree_io.save(str(path), tree, meta)
    os.remove(workdir / "metrics.jsonl")
    with pytest.raises(Crash):
        trainer.train_lifelong(
            TASKS, _tiny("lasem"), workdir=str(workdir), on_epoch=_crash_after(1)
        )
    assert "records" not in json.loads(_skeleton(workdir, 4))["meta"]
    results = trainer.train_lifelong(TASKS, _tiny("lasem"), workdir=str(workdir))
    assert _without_time(results) == crashed[1]
    assert results_io.read_jsonl(workdir / "metrics.jsonl") == crashed[2]


def test_baseline_resume_without_metrics_raises_load_error(tmp_path):
    """The competing methods' loop reads its records back the same way."""
    config = _tiny("single_network")
    with pytest.raises(Crash):
        trainer.train_lifelong(TASKS, config, workdir=str(tmp_path), on_epoch=_crash_after(1))
    os.remove(tmp_path / "metrics.jsonl")
    with pytest.raises(lasem_jax.LoadError, match=r"metrics\.jsonl is missing.*--restart"):
        trainer.train_lifelong(TASKS, config, workdir=str(tmp_path))


def _slow_saves(monkeypatch, seconds=0.3):
    """Makes every checkpoint write take a while, so a run that did not wait would be caught."""
    real_save = tree_io.save

    def slow_save(*args, **kwargs):
        time.sleep(seconds)
        real_save(*args, **kwargs)

    monkeypatch.setattr(tree_io, "save", slow_save)


@pytest.mark.parametrize("method", METHODS)
def test_stop_waits_for_the_background_write(tmp_path, monkeypatch, method):
    """A stop right after a checkpoint's save leaves it complete when `Stopped` is raised."""
    _slow_saves(monkeypatch)
    config = _tiny(method, epochs=3)
    with interrupt.graceful_stop(), pytest.raises(interrupt.Stopped):
        trainer.train_lifelong(
            TASKS,
            config,
            workdir=str(tmp_path),
            on_epoch=lambda record: interrupt.request(signal.SIGTERM),
        )
    store = checkpoint.CheckpointStore(str(tmp_path / "checkpoints"))
    assert store.steps() == [1]
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["0000000001"]
    tree_io.load(store._path(1))


def test_save_async_copies_its_input_and_writes_one_at_a_time(tmp_path, monkeypatch):
    """The caller may change the arrays at once; writes never overlap; errors come back."""
    active, overlaps, release = [], [], threading.Event()
    real_save = tree_io.save

    def watched_save(*args, **kwargs):
        overlaps.append(len(active))
        active.append(1)
        release.wait()
        real_save(*args, **kwargs)
        active.pop()

    monkeypatch.setattr(tree_io, "save", watched_save)
    store = checkpoint.CheckpointStore(str(tmp_path), keep=5)
    weights = np.zeros(3, np.float32)
    store.save_async(1, {"w": weights}, {"note": ["a"]})
    weights += 1  # Before write 1 reads anything.
    threading.Timer(0.2, release.set).start()
    store.save_async(2, {"w": weights}, {})  # Waits for write 1 (blocked until the timer).
    store.wait()
    assert overlaps == [0, 0]
    tree, meta = tree_io.load(store._path(1))
    np.testing.assert_array_equal(tree["w"], np.zeros(3))
    assert meta == {"note": ["a"]}
    monkeypatch.setattr(tree_io, "save", _disk_full)
    store.save_async(3, {"w": weights}, {})
    with pytest.raises(OSError, match="full"):
        store.save_async(4, {"w": weights}, {})
    store.wait()  # The error is raised once.
    assert store.steps() == [1, 2]


def _disk_full(*args, **kwargs):
    raise OSError("disk full")


def test_write_error_at_the_end_fails_the_run(tmp_path, monkeypatch):
    """A failing last checkpoint write is raised before results.json is written."""
    real_save = tree_io.save

    def failing_last(directory, *args, **kwargs):
        if directory.endswith(f"{4:010d}"):
            raise OSError(f"{directory}: no space left")
        real_save(directory, *args, **kwargs)

    monkeypatch.setattr(tree_io, "save", failing_last)
    with pytest.raises(OSError, match="no space left"):
        trainer.train_lifelong(TASKS, _tiny("lasem", every=0), workdir=str(tmp_path))
    assert not os.path.exists(tmp_path / "results.json")
