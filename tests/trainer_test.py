"""Tests of the lifelong trainer: methods x learners, determinism, tracing, results, freezing."""

import json

import chex
import jax
import numpy as np
import pytest

from configs import default
from lasem_jax.data import make_digits_tasks
from lasem_jax.engine import lockstep, steps
from lasem_jax.task import Task
from lasem_jax.training import trainer


def _task(seed: int, num_classes: int = 3, n: int = 30) -> Task:
    """A small learnable task: 8x8x1 images whose mean brightness pattern depends on the class."""
    rng = np.random.default_rng(seed)
    protos = rng.uniform(0, 1, (num_classes, 8, 8, 1)).astype(np.float32)

    def split(size: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.arange(size) % num_classes
        x = protos[y] + 0.1 * rng.standard_normal((size, 8, 8, 1)).astype(np.float32)
        return x.astype(np.float32), y.astype(np.int32)

    (xt, yt), (xv, yv), (xs, ys) = split(n), split(12), split(12)
    return Task(xt, yt, xv, yv, xs, ys, name=f"toy{seed}", num_classes=num_classes)


def _config(method: str = "lasem", learner: str = "hps", epochs: int = 2):
    c = default.get_config()
    c.method, c.learner = method, learner
    c.model.width = 0.125
    c.train.epochs_per_task = epochs
    c.data.name = "toy"
    return c


TASKS = [_task(0), _task(1)]


@pytest.mark.parametrize("learner", ["hps", "tf", "dfcnn"])
@pytest.mark.parametrize("method", ["lasem", "static", "single_task"])
def test_two_task_run_for_each_method_and_learner(method, learner):
    """Every method and learner runs 2 tasks x 2 epochs and reports consistent metrics."""
    results = trainer.train_lifelong(TASKS, _config(method, learner))
    assert results["num_tasks"] == 2
    assert len(results["peak_accuracy"]) == 2
    assert all(0.0 <= a <= 1.0 for a in results["peak_accuracy"] + results["final_accuracy"])
    assert results["accuracy_matrix"][0][1] is None
    assert results["accuracy_matrix"][1][1] == results["final_accuracy"][1]
    chosen = np.array(results["chosen_configs"])
    chex.assert_shape(chosen, (2, 4))
    if method == "single_task":
        assert not chosen.any()
    if method == "static":
        assert chosen.all()
    if method == "lasem":
        assert len(results["prior_history"]) == 2 and len(results["prior_history"][0]) == 2
    np.testing.assert_allclose(results["transfer_fraction_per_layer"], chosen.mean(axis=0))


def test_lasem_learns_digits_and_prior_bookkeeping():
    """LASEM learns two digits tasks; the Laplace prior sums to 1 and counts every minibatch."""
    tasks = make_digits_tasks(seed=0, num_tasks=2)
    config = default.get_config()
    config.model.width, config.train.epochs_per_task, config.optim.lr = 0.25, 12, 3e-3
    results = trainer.train_lifelong(tasks, config)
    assert results["mean_peak_accuracy"] > 0.8
    num_batches = tasks[0].num_train // config.train.batch_size
    for t, history in enumerate(results["prior_history"]):
        assert len(history) == 12
        for e, prior in enumerate(history, start=1):
            np.testing.assert_allclose(sum(prior), 1.0, rtol=1e-5)
            # Laplace: prior = counts / (C + e * batches) with integer counts >= 1 (Eq. 1).
            counts = np.array(prior) * (16 + e * num_batches)
            np.testing.assert_allclose(counts, np.round(counts), atol=1e-3)
            assert counts.min() > 0.999
        top = int(np.argmax(history[-1]))
        model = trainer.make_model(config, tasks[t])
        np.testing.assert_array_equal(model.configs[top], results["chosen_configs"][t])


def test_same_seed_identical_results():
    """The same seed gives identical results; another seed gives different ones."""
    a = trainer.train_lifelong(TASKS, _config())
    b = trainer.train_lifelong(TASKS, _config())
    for r in (a, b):
        r.pop("train_seconds")
    assert a == b
    c = _config()
    c.seed = 1
    other = trainer.train_lifelong(TASKS, c)
    assert other["prior_history"] != a["prior_history"]


def test_epoch_step_traced_once_across_tasks(monkeypatch):
    """Tasks of equal shapes reuse one compiled epoch: no retrace per task."""
    counted = jax.jit(chex.assert_max_traces(steps.train_epoch, n=1), static_argnums=(0, 1))
    monkeypatch.setattr(lockstep, "jitted_train_epoch", counted)
    tasks = [_task(0), _task(1), _task(2)]
    trainer.train_lifelong(tasks, _config())
    chex.clear_trace_counter()


def test_single_task_leaves_earlier_tasks_exactly_unchanged():
    """With nothing shared, earlier tasks are frozen: their accuracy never moves."""
    results = trainer.train_lifelong(TASKS, _config("single_task", epochs=3))
    matrix = results["accuracy_matrix"]
    assert matrix[1][0] == matrix[0][0]
    assert results["forgetting_ratio"][0] == pytest.approx(
        matrix[0][0] / results["peak_accuracy"][0]
    )


def test_results_file_fields_and_types(tmp_path):
    """results.json and metrics.jsonl are written with the documented fields and types."""
    trainer.train_lifelong(TASKS, _config(), workdir=str(tmp_path))
    results = json.loads((tmp_path / "results.json").read_text())
    types = {
        "method": str,
        "learner": str,
        "dataset": str,
        "num_tasks": int,
        "seed": int,
        "peak_accuracy": list,
        "final_accuracy": list,
        "forgetting_ratio": list,
        "accuracy_matrix": list,
        "mean_peak_accuracy": float,
        "mean_final_accuracy": float,
        "mean_forgetting_ratio": float,
        "bwt": float,
        "chosen_configs": list,
        "transfer_fraction_per_layer": list,
        "prior_history": list,
        "train_seconds": float,
        "num_parameters": int,
        "config": dict,
    }
    for key, kind in types.items():
        assert isinstance(results[key], kind), key
    assert results["config"]["method"] == "lasem"
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4
    assert [json.loads(line)["task"] for line in lines] == [0, 0, 1, 1]


def test_bad_config_and_data_errors():
    """Unknown method, bad static configuration and mismatched task shapes fail clearly."""
    c = _config()
    c.method = "magic"
    with pytest.raises(ValueError, match=r"config\.method"):
        trainer.train_lifelong(TASKS, c)
    c = _config("static")
    c.static_config = "top9"
    with pytest.raises(ValueError, match="top9"):
        trainer.train_lifelong(TASKS, c)
    x, y = np.zeros((12, 9, 9, 1), np.float32), np.arange(12) % 3
    bigger = Task(x, y, x, y, x, y, name="bigger")
    with pytest.raises(ValueError, match="shape"):
        trainer.train_lifelong([TASKS[0], bigger], _config())
