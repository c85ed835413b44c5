"""Tests of the kept model's metrics and the trained-model artifact (`load_trained`, evaluate)."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import lasem_jax
from lasem_jax.storage import tree_io
from lasem_jax.training import trainer
from tests.resume_test import Crash, _crash_after
from tests.trainer_test import _config, _task

TASKS = [_task(0, n=60), _task(1, n=60), _task(2, n=60)]
METHODS = ["lasem", "static", "brute_force", "darts", "prognn"]


def _run(method, workdir, tasks=TASKS, **overrides):
    config = _config(method, epochs=3)
    config.model.partition = ((0, 1), (2, 3)) if method == "brute_force" else None
    config.model.he_init, config.optim.lr = True, 1e-2  # learns within a few epochs
    config.train.batch_size = 5
    for key, value in overrides.items():
        section, field = key.split(".")
        config[section][field] = value
    return trainer.train_lifelong(tasks, config, workdir=str(workdir))


@pytest.fixture(scope="module", params=METHODS)
def finished(request, tmp_path_factory):
    """A finished 3-task run of each method and its workdir."""
    workdir = tmp_path_factory.mktemp(request.param)
    return request.param, workdir, _run(request.param, workdir)


def test_kept_row_equals_loaded_model(finished):
    """The last row of accuracy_matrix is the saved model's test accuracy, task by task."""
    method, workdir, results = finished
    model = lasem_jax.load_trained(str(workdir))
    assert model.num_tasks == len(TASKS) and model.method == method
    for k, task in enumerate(TASKS):
        acc = model.evaluate(k, task.x_test, task.y_test)
        np.testing.assert_allclose(acc, results["final_accuracy"][k], atol=1e-6)
        logits = np.asarray(model.predict(k, task.x_test))
        assert logits.shape == (len(task.y_test), task.num_classes)
        np.testing.assert_allclose(np.mean(logits.argmax(-1) == task.y_test), acc, atol=1e-6)
    if method == "prognn":
        assert model.chosen_configs is None
    else:
        assert model.chosen_configs == results["chosen_configs"]


def test_both_matrices_are_reported(finished):
    """accuracy_matrix (kept model) and accuracy_matrix_last_epoch share shape and diagonal use."""
    _, _, results = finished
    kept, last = results["accuracy_matrix"], results["accuracy_matrix_last_epoch"]
    assert len(kept) == len(last) == len(TASKS)
    for i in range(len(TASKS)):
        assert kept[i][i + 1 :] == last[i][i + 1 :] == [None] * (len(TASKS) - i - 1)
    assert results["final_accuracy"] == kept[-1]
    bwt = np.mean([kept[-1][i] - kept[i][i] for i in range(len(TASKS) - 1)])
    np.testing.assert_allclose(results["bwt"], bwt)
    ratio = [f / p if p else None for f, p in zip(kept[-1], results["peak_accuracy"], strict=True)]
    assert results["forgetting_ratio"] == ratio


@pytest.mark.parametrize("method", ["lasem", "darts"])
def test_each_row_is_the_model_kept_after_that_task(tmp_path, method):
    """Row 0 of a 2-task run equals the final row of the 1-task run (the same first task)."""
    two = _run(method, tmp_path / "two", TASKS[:2])
    one = _run(method, tmp_path / "one", TASKS[:1])
    assert two["accuracy_matrix"][0][:1] == one["accuracy_matrix"][0] == one["final_accuracy"]
    model = lasem_jax.load_trained(str(tmp_path / "one"))
    task = TASKS[0]
    np.testing.assert_allclose(
        model.evaluate(0, task.x_test, task.y_test), two["accuracy_matrix"][0][0], atol=1e-6
    )


def test_consolidation_keeps_the_current_task_model(tmp_path):
    """Consolidation keeps everything the new task reads, so the diagonals agree."""
    results = _run("lasem", tmp_path, TASKS[:2])
    kept, last = results["accuracy_matrix"], results["accuracy_matrix_last_epoch"]
    assert [kept[i][i] for i in range(2)] == [last[i][i] for i in range(2)]


def test_resumed_run_saves_the_same_model(tmp_path):
    """A run killed mid-task and resumed writes a model bitwise equal to an uninterrupted one."""
    config = _config("lasem", epochs=3)
    config.train.checkpoint_every_epochs = 2
    trainer.train_lifelong(TASKS[:2], config, workdir=str(tmp_path / "a"))
    with pytest.raises(Crash):
        trainer.train_lifelong(
            TASKS[:2], config, workdir=str(tmp_path / "b"), on_epoch=_crash_after(5)
        )
    assert not os.path.exists(tmp_path / "b" / "model")
    trainer.train_lifelong(TASKS[:2], config, workdir=str(tmp_path / "b"))
    tree_a, meta_a = tree_io.load(str(tmp_path / "a" / "model"))
    tree_b, meta_b = tree_io.load(str(tmp_path / "b" / "model"))
    assert meta_a == meta_b
    leaves_a, leaves_b = jax.tree_util.tree_leaves(tree_a), jax.tree_util.tree_leaves(tree_b)
    assert len(leaves_a) == len(leaves_b) > 0
    for a, b in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_array_equal(a, b)


def test_load_trained_errors(tmp_path, finished):
    """Missing models, bad task indices and wrong image shapes get clear errors."""
    with pytest.raises(FileNotFoundError, match="holds no trained model"):
        lasem_jax.load_trained(str(tmp_path))
    _, workdir, _ = finished
    model = lasem_jax.load_trained(str(workdir))
    x = TASKS[0].x_test
    with pytest.raises(ValueError, match="out of range"):
        model.predict(len(TASKS), x)
    with pytest.raises(ValueError, match=r"\[N, H, W, C\]"):
        model.predict(0, np.transpose(x, (0, 3, 1, 2)))
    with pytest.raises(ValueError, match="y has shape"):
        model.evaluate(0, x, TASKS[0].y_test[:-1])


def test_launch_evaluate_prints_the_last_row(tmp_path):
    """`python -m launch.evaluate` rebuilds the digits tasks and reproduces final_accuracy."""
    workdir = str(tmp_path / "run")
    train = [sys.executable, "-m", "launch.train", f"--workdir={workdir}"]
    train += ["--config.data.num_tasks=2", "--config.train.epochs_per_task=1"]
    train += ["--config.model.width=0.125"]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run(train, cwd=root, check=True, capture_output=True)
    out = subprocess.run(
        [sys.executable, "-m", "launch.evaluate", f"--workdir={workdir}"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    )
    summary = json.loads(out.stdout.splitlines()[-2])
    with open(os.path.join(workdir, "results.json")) as f:
        final = json.load(f)["final_accuracy"]
    np.testing.assert_allclose(summary["test_accuracy"], final, atol=1e-6)
    assert "task 1: test accuracy" in out.stdout
