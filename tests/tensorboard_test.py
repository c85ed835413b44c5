"""Tests for the TensorBoard event files every run writes (lasem_jax.training.loop)."""

import glob
import os
import struct

import pytest
from tensorboardX.proto import event_pb2

from lasem_jax.core.frozen import freeze
from lasem_jax.training import loop, trainer
from tests.trainer_test import _config, _task

TASKS = [_task(0), _task(1)]


def _scalars(workdir):
    """`{tag: {step: value}}` of every event file in `workdir` (TFRecord framing, parsed)."""
    out = {}
    for path in sorted(glob.glob(os.path.join(workdir, "events.out.tfevents.*"))):
        with open(path, "rb") as f:
            data = f.read()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12 : pos + 12 + length])
            pos += 12 + length + 4
            for value in event.summary.value:
                out.setdefault(value.tag, {})[event.step] = value.simple_value
    return out


class Crash(Exception):
    """Stands in for a process dying."""


def test_run_writes_epoch_scalars_and_a_resumed_run_appends(tmp_path):
    def crash(record):
        if record["global_epoch"] == 3:
            raise Crash

    config, workdir = _config("lasem", epochs=2), str(tmp_path)
    with pytest.raises(Crash):
        trainer.train_lifelong(TASKS, config, workdir=workdir, on_epoch=crash)
    results = trainer.train_lifelong(TASKS, config, workdir=workdir)
    assert len(glob.glob(os.path.join(workdir, "events.out.tfevents.*"))) == 2
    scalars = _scalars(workdir)
    for tag in ("train/loss", "train/lr", "accuracy/val_current", "accuracy/test_current"):
        assert sorted(scalars[tag]) == [1, 2, 3, 4]
    assert sorted(scalars["accuracy/test_mean_seen"]) == [1, 2, 3, 4]
    assert sorted(scalars["lasem/top_prior"]) == [1, 2, 3, 4]
    assert "lasem/posterior_entropy" in scalars
    assert scalars["train/lr"][1] == pytest.approx(1e-3)
    last = results["accuracy_matrix_last_epoch"][1]
    assert scalars["accuracy/test_current"][4] == pytest.approx(last[1])
    assert scalars["accuracy/test_mean_seen"][4] == pytest.approx(sum(last) / 2)


class _Method:
    """The least of a `loop.Method` that `Loop.resume` and `Loop.record` read."""

    task = epoch = global_epoch = 0
    elapsed = 0.0

    def __init__(self):
        self.records = []

    def check(self, tree, meta):
        raise AssertionError("an empty workdir has no checkpoint to check")


@pytest.mark.parametrize("enabled", [True, False])
def test_train_tensorboard_switches_the_event_file(tmp_path, enabled):
    config = _config("static", epochs=1)
    config.train.tensorboard = enabled
    frozen = freeze(config)
    workdir = str(tmp_path)
    the_loop = loop.Loop(_Method(), frozen, workdir, None)
    the_loop.resume(restart=False)
    the_loop.record(
        {
            "task": 0,
            "epoch": 1,
            "global_epoch": 1,
            "lr": 0.1,
            "loss": 2.0,
            "val": [0.5],
            "test": [0.25],
        }
    )
    the_loop.close()
    found = glob.glob(os.path.join(workdir, "events.out.tfevents.*"))
    assert len(found) == int(enabled)
    if enabled:
        assert _scalars(workdir)["accuracy/test_current"] == {1: 0.25}
