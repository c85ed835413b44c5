"""Tests of the batched evaluation: equal to one task at a time, one compile, partial epochs."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lasem_jax import evaluation, results_io, steps, trainer
from lasem_jax.model import build_model
from lasem_jax.task import Task
from tests.trainer_test import _config, _task


def _tasks():
    """Three tasks whose validation and test sets differ in size."""
    a, b, c = _task(0), _task(1), _task(2)
    b = Task(b.x_train, b.y_train, b.x_val, b.y_val, b.x_test[:7], b.y_test[:7], num_classes=3)
    return [a, b, c]


def test_equals_one_task_at_a_time():
    """Each task's accuracies equal `steps.accuracy` on its own split; NaN where not asked."""
    tasks = _tasks()
    model = build_model("cifar100_4", "hps", 3, width=0.125, input_shape=(8, 8, 1))
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    shared = model.init_shared(keys[0])
    params = [model.init_task(k) for k in keys]
    configs = [np.array([1, 0, 1, 0], bool), np.zeros(4, bool), np.ones(4, bool)]
    evaluator = evaluation.Evaluator([model] * 3, tasks, chunk=5)
    got = evaluator.accuracies(shared, params, configs, [0, 2])
    chex.assert_shape(got, (3, 2))
    assert np.isnan(got[1]).all()
    for k in (0, 2):
        for j, split in enumerate(evaluation.SPLITS):
            x, y = getattr(tasks[k], f"x_{split}"), getattr(tasks[k], f"y_{split}")
            p = {"shared": shared, "task": params[k]}
            want = steps.accuracy(model, p, jnp.asarray(configs[k]), x, y, chunk=5)
            assert got[k, j] == pytest.approx(float(want), abs=1e-7)
    small = evaluator.accuracies(shared, params, configs, [1])
    want = steps.accuracy(
        model,
        {"shared": shared, "task": params[1]},
        configs[1],
        tasks[1].x_test,
        tasks[1].y_test,
        chunk=5,
    )
    assert small[1, 1] == pytest.approx(float(want), abs=1e-7)


def test_one_compile_for_any_subset(monkeypatch):
    """Evaluating different subsets and fewer seen tasks reuses one compiled program."""
    counted = jax.jit(
        chex.assert_max_traces(evaluation.stack_accuracies.__wrapped__, n=1),
        static_argnums=(0,),
        static_argnames=("chunk",),
    )
    monkeypatch.setattr(evaluation, "stack_accuracies", counted)
    tasks = _tasks()
    model = build_model("cifar100_4", "hps", 3, width=0.125, input_shape=(8, 8, 1))
    shared, task = model.init_shared(jax.random.PRNGKey(0)), model.init_task(jax.random.PRNGKey(1))
    evaluator = evaluation.Evaluator([model] * 3, tasks, chunk=8)
    for seen in (1, 2, 3):
        evaluator.accuracies(shared, [task] * seen, [np.ones(4, bool)] * seen, range(seen))
    chex.clear_trace_counter()


def test_eval_every_epochs_keeps_metrics_exact(tmp_path):
    """Evaluating earlier tasks every 2nd epoch leaves every summary metric unchanged."""
    tasks = [_task(0), _task(1)]
    every = trainer.train_lifelong(tasks, _config(epochs=3))
    config = _config(epochs=3)
    config.train.eval_every_epochs = 2
    sparse = trainer.train_lifelong(tasks, config, workdir=str(tmp_path))
    records = results_io.read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["test"][0] is None for r in records[3:]] == [True, False, False]
    for key in ("peak_accuracy", "final_accuracy", "accuracy_matrix", "chosen_configs", "bwt"):
        assert sparse[key] == every[key], key
    assert sparse["accuracy_matrix_last_epoch"] == every["accuracy_matrix_last_epoch"]


def test_stack_pads_each_task_once():
    """A task's validation rows, then its test rows, then padding to one multiple of the chunk."""
    tasks = _tasks()
    sizes = [(len(t.y_val), len(t.y_test)) for t in tasks]
    data = evaluation.stack_tasks(tasks, chunk=8)
    longest = max(v + t for v, t in sizes)
    chex.assert_shape(data.y, (3, -(-longest // 8) * 8))
    np.testing.assert_array_equal(np.asarray(data.count), np.array(sizes))
    for k, (n_val, n_test) in enumerate(sizes):
        split = np.asarray(data.split[k])
        want = np.r_[np.zeros(n_val), np.ones(n_test), -np.ones(len(split) - n_val - n_test)]
        np.testing.assert_array_equal(split, want)
        np.testing.assert_array_equal(
            np.asarray(data.y[k, n_val : n_val + n_test]), tasks[k].y_test
        )
