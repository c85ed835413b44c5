"""Kill-and-resume of every competing method through the lifelong loop: identical results."""

import os

import jax
import numpy as np
import pytest

from lasem_jax.storage import tree_io
from lasem_jax.training import trainer
from tests.baseline_state_test import METHODS, _setup
from tests.resume_test import Crash, _crash_after, _without_time


@pytest.mark.parametrize("method", METHODS)
def test_killed_and_resumed_run_equals_uninterrupted(tmp_path, method):
    """Killed mid task 1 (after its first epoch's checkpoint), the resumed run ends identically.

    (Object-level resume at a task's last epoch is tested in baseline_state_test.)
    """
    cfg, tasks, _ = _setup(method)
    cfg.train.checkpoint_every_epochs = 1
    full = trainer.train_lifelong(tasks, cfg, workdir=str(tmp_path / "full"))
    killed = str(tmp_path / "killed")
    with pytest.raises(Crash):
        trainer.train_lifelong(tasks, cfg, workdir=killed, on_epoch=_crash_after(3))
    assert not os.path.exists(os.path.join(killed, "results.json"))
    resumed = trainer.train_lifelong(tasks, cfg, workdir=killed)
    assert _without_time(resumed) == _without_time(full)
    for name in ("metrics.jsonl",):
        with open(os.path.join(killed, name)) as a, open(tmp_path / "full" / name) as b:
            assert a.read() == b.read()
    tree_a, _ = tree_io.load(os.path.join(killed, "model"))
    tree_b, _ = tree_io.load(str(tmp_path / "full" / "model"))
    for a, b in zip(
        jax.tree_util.tree_leaves(tree_a), jax.tree_util.tree_leaves(tree_b), strict=True
    ):
        np.testing.assert_array_equal(a, b)
