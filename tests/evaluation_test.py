"""Tests of the batched evaluation: equal to one task at a time, one compile, partial epochs."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lasem_jax.engine import evaluation, steps
from lasem_jax.networks.model import build_model
from lasem_jax.storage import results_io
from lasem_jax.task import Task
from lasem_jax.training import trainer
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
        static_argnames=("chunks",),
    )
    monkeypatch.setattr(evaluation, "stack_accuracies", counted)
    tasks = _tasks()
    model = build_model("cifar100_4", "hps", 3, width=0.125, input_shape=(8, 8, 1))
    shared, task = model.init_shared(jax.random.PRNGKey(0)), model.init_task(jax.random.PRNGKey(1))
    evaluator = evaluation.Evaluator([model] * 3, tasks, chunk=8)
    for seen in (1, 2, 3):
        evaluator.accuracies(shared, [task] * seen, [np.ones(4, bool)] * seen, range(seen))
    chex.clear_trace_counter()


def test_test_split_only_above_threshold():
    """`test_above` skips a task's test split unless its validation accuracy beats the value."""
    tasks = _tasks()
    model = build_model("cifar100_4", "hps", 3, width=0.125, input_shape=(8, 8, 1))
    shared, task = model.init_shared(jax.random.PRNGKey(0)), model.init_task(jax.random.PRNGKey(1))
    evaluator = evaluation.Evaluator([model] * 3, tasks, chunk=8)
    args = (shared, [task] * 3, [np.ones(4, bool)] * 3, [0, 1, 2])
    full = evaluator.accuracies(*args)
    assert not np.isnan(full).any()
    below, at = full[1, 0] - 0.01, full[2, 0]
    got = evaluator.accuracies(*args, test_above={1: below, 2: at})
    np.testing.assert_array_equal(got[:, 0], full[:, 0])
    np.testing.assert_array_equal(got[:2, 1], full[:2, 1])
    assert np.isnan(got[2, 1])  # Equal is no improvement.


def test_eval_every_epochs_keeps_metrics_exact(tmp_path):
    """Sparse evaluation leaves every summary metric unchanged.

    Earlier tasks are evaluated every 4th epoch, the current task's test set only there, at the
    task's end and where its validation accuracy improves.
    """
    tasks = [_task(0), _task(1)]
    every = trainer.train_lifelong(tasks, _config(epochs=5))
    config = _config(epochs=5)
    config.train.eval_every_epochs = 4
    sparse = trainer.train_lifelong(tasks, config, workdir=str(tmp_path))
    records = results_io.read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["test"][0] is None for r in records[5:]] == [True, True, True, False, False]
    best = {0: -1.0, 1: -1.0}  # Per task, its best validation accuracy so far.
    for r in records:
        t = r["task"]
        improved, best[t] = r["val"][t] > best[t], max(best[t], r["val"][t])
        assert (r["test"][t] is not None) == (improved or r["epoch"] in (4, 5)), r
    assert any(r["test"][r["task"]] is None for r in records)  # The skip is exercised.
    for key in ("peak_accuracy", "final_accuracy", "accuracy_matrix", "chosen_configs", "bwt"):
        assert sparse[key] == every[key], key
    assert sparse["accuracy_matrix_last_epoch"] == every["accuracy_matrix_last_epoch"]


def test_stack_pads_each_split_to_its_chunks():
    """Each split is padded to a whole number of even passes of at most the chunk."""
    tasks = _tasks()
    assert evaluation.split_chunk(600, 256) == 200
    assert evaluation.split_chunk(12, 5) == 4
    for name in evaluation.SPLITS:
        sizes = [len(getattr(t, f"y_{name}")) for t in tasks]
        chunk = evaluation.split_chunk(max(sizes), 5)
        data = evaluation.stack_split(tasks, name, chunk)
        chex.assert_shape(data.y, (3, -(-max(sizes) // chunk) * chunk))
        np.testing.assert_array_equal(np.asarray(data.count), sizes)
        for k, n in enumerate(sizes):
            np.testing.assert_array_equal(np.asarray(data.y[k, :n]), getattr(tasks[k], f"y_{name}"))
            np.testing.assert_array_equal(np.asarray(data.x[k, n:]), 0.0)
