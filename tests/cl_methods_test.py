"""The standard continual-learning methods: they learn, resist interference, and resume exactly."""

import functools
import os
import tempfile

import numpy as np
import pytest

import lasem_jax
from lasem_jax.networks.architectures import register_architecture
from lasem_jax.networks.blocks import BlockNetwork, ConvBlock
from lasem_jax.task import Task
from lasem_jax.training import trainer
from tests.resume_test import Crash, _crash_after, _without_time
from tests.trainer_test import _config, _task

METHODS = ("ewc", "si", "lwf", "er", "agem", "derpp")
EPOCHS = 6
# Hyperparameters strong enough that the protection shows on 30 images (same seed: exact).
STRENGTH = {
    "ewc.lambda_": 1e4,
    "si.c": 10.0,
    "lwf.lambda_o": 5.0,
    "er.buffer_size": 30,
    "agem.buffer_size": 30,
    "agem.sample_size": 30,
    "derpp.buffer_size": 30,
    "derpp.alpha": 1.0,
    "derpp.beta": 1.0,
}


def _conflict(task: Task, seed: int) -> Task:
    """`task`'s images with random labels: memorising them rewrites the trunk."""
    rng = np.random.default_rng(seed)

    def relabel(y: np.ndarray) -> np.ndarray:
        return rng.integers(0, task.num_classes, len(y)).astype(np.int32)

    x, xv, xs = task.x_train, task.x_val, task.x_test
    return Task(
        x,
        relabel(task.y_train),
        xv,
        relabel(task.y_val),
        xs,
        relabel(task.y_test),
        name="conflict",
        num_classes=task.num_classes,
    )


def _tiny_net(*, width: float, input_shape=None, fc_hidden=None) -> BlockNetwork:
    """Two 3x3 conv layers of 8 channels (pools 2, 1) and one FC layer of 16: fast to compile."""
    del width
    blocks = (ConvBlock(3, 8, 2, None, None), ConvBlock(3, 8, 1, None, None))
    return BlockNetwork(blocks, input_shape or (8, 8, 1), fc_hidden or (16,), (), "cl_tiny")


register_architecture("cl_tiny", _tiny_net)
TASKS = [_task(0, n=120), _conflict(_task(0, n=300), 1)]


def _cfg(method: str):
    c = _config(method, epochs=EPOCHS)
    c.model.arch, c.model.he_init, c.optim.lr = "cl_tiny", True, 1e-2
    c.train.checkpoint_every_epochs = 1
    for name, value in STRENGTH.items():
        section, field = name.split(".")
        if section == method:
            c[section][field] = value
    return c


_WORKDIRS = tempfile.TemporaryDirectory(prefix="cl_methods_")


@functools.cache
def _full(method: str) -> dict:
    """The uninterrupted run of `method` on `TASKS` (its files in a workdir of `_workdir`)."""
    return trainer.train_lifelong(TASKS, _cfg(method), workdir=_workdir(method))


def _workdir(method: str) -> str:
    return os.path.join(_WORKDIRS.name, method)


@pytest.mark.parametrize("method", METHODS)
def test_learns_above_chance(method):
    """After its task, task 0 is learned well above chance (1/3)."""
    assert _full(method)["peak_accuracy"][0] > 0.6, _full(method)


@pytest.mark.parametrize("method", METHODS)
def test_keeps_task_zero_better_than_finetuning(method):
    """On the interfering second task, task 0's final accuracy beats naive fine-tuning's."""
    got, naive = _full(method)["final_accuracy"][0], _full("finetune")["final_accuracy"][0]
    assert got > naive


@pytest.mark.parametrize("method", METHODS)
def test_killed_and_resumed_run_equals_uninterrupted(tmp_path, method):
    """Killed mid task 1 (after its first epoch's checkpoint), the resumed run ends identically."""
    cfg = _cfg(method)
    killed = str(tmp_path / "killed")
    with pytest.raises(Crash):
        trainer.train_lifelong(TASKS, cfg, workdir=killed, on_epoch=_crash_after(EPOCHS + 2))
    resumed = trainer.train_lifelong(TASKS, cfg, workdir=killed)
    assert _without_time(resumed) == _without_time(_full(method))


@pytest.mark.parametrize("method", METHODS)
def test_saved_model_reproduces_final_accuracy(method):
    """`load_trained` of the run's model/ evaluates each task to its final accuracy."""
    results, model = _full(method), lasem_jax.load_trained(_workdir(method))
    got = [model.evaluate(k, t.x_test, t.y_test) for k, t in enumerate(TASKS)]
    np.testing.assert_allclose(got, results["final_accuracy"], atol=1e-6)
