"""Tests of DARTS layer selection: mixing math, architecture gradients, lifelong runs."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lasem_jax.baselines import BASELINES, darts
from lasem_jax.networks import layers
from lasem_jax.training import trainer
from tests.trainer_test import TASKS, _config


def _setup(learner: str = "hps"):
    """A task model, fresh params and a minibatch of the first toy task."""
    model = trainer.make_model(_config("darts", learner), TASKS[0])
    params = model.init(jax.random.PRNGKey(0))
    x, y = jnp.asarray(TASKS[0].x_train[:6]), jnp.asarray(TASKS[0].y_train[:6])
    return model, params, x, y


def test_mixed_layer_is_the_weighted_sum_of_both_activated_paths():
    """Layer i outputs mix[i,0] * relu(specific conv) + mix[i,1] * relu(transfer conv)."""
    model, params, x, _ = _setup("dfcnn")
    mix = jnp.array([[0.3, 0.7], [0.9, 0.1], [0.5, 0.5], [0.2, 0.8]])
    (w_t, b_t), (w_s, b_s) = model.layer_kernels(params, 0)
    want = 0.3 * jax.nn.relu(layers.conv2d(x, w_s) + b_s) + 0.7 * jax.nn.relu(
        layers.conv2d(x, w_t) + b_t
    )
    got = darts.mixed_layer(model, params, mix)(0, x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("transfer", [True, False])
def test_saturated_alpha_gives_the_single_path_network(transfer):
    """An alpha strongly favouring one path per layer gives that configuration's network."""
    model, params, x, _ = _setup()
    sign = 1.0 if transfer else -1.0
    alpha = jnp.tile(jnp.array([-30.0, 30.0]) * sign, (model.num_layers, 1))
    config = jnp.full((model.num_layers,), transfer)
    got = darts.mixed_logits(model, params, alpha, x)
    want = model.apply_config(params, x, config)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    other = model.apply_config(params, x, ~config)
    assert not np.allclose(got, other, atol=1e-3)


def test_discrete_config_is_argmax_with_ties_to_task_specific():
    """Index 1 (transfer) wins only when strictly larger; ties go to task-specific."""
    alpha = np.array([[0.0, 0.0], [0.1, 0.2], [0.3, -0.3], [-1.0, -1.0 + 1e-6]])
    np.testing.assert_array_equal(darts.discrete_config(alpha), [False, True, False, True])


def test_second_order_gradient_unrolls_one_weight_step():
    """Order 2 equals order 1 with a zero unrolled step and differs from it otherwise."""
    model, params, x, y = _setup()
    alpha = jnp.array([[0.2, -0.1], [0.0, 0.3], [-0.2, 0.1], [0.1, 0.0]])
    rng = jax.random.PRNGKey(1)
    grad = jax.jit(darts.arch_gradient, static_argnums=(0,), static_argnames=("order",))
    first = grad(model, params, alpha, x, y, rng, order=1, unroll_lr=0.5)
    zero_step = grad(model, params, alpha, x, y, rng, order=2, unroll_lr=0.0)
    second = grad(model, params, alpha, x, y, rng, order=2, unroll_lr=0.5)
    chex.assert_shape(first, (model.num_layers, 2))
    np.testing.assert_allclose(zero_step, first, rtol=1e-5, atol=1e-7)
    assert np.abs(second - first).max() > 1e-3 * np.abs(first).max()


def test_unknown_order_is_rejected():
    """An order other than 1 or 2 fails before training, naming the field."""
    cfg = _config("darts")
    cfg.darts.order = 3
    with pytest.raises(ValueError, match=r"config\.darts\.order"):
        trainer.train_lifelong(TASKS, cfg)


@pytest.mark.parametrize(("learner", "order"), [("hps", 1), ("dfcnn", 1), ("hps", 2)])
def test_lifelong_run_learns_alpha_and_reports_its_argmax(learner, order, tmp_path, monkeypatch):
    """2 tasks run; alphas move from 0 and each reported config is their per-layer argmax."""
    runners = []

    class Recorded(darts.Darts):
        def __init__(self, *args):
            super().__init__(*args)
            runners.append(self)

    monkeypatch.setitem(BASELINES, "darts", Recorded)
    cfg = _config("darts", learner)
    cfg.darts.order = order
    results = trainer.train_lifelong(TASKS, cfg, workdir=str(tmp_path))
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["method"] == "darts" and saved["learner"] == learner
    assert len(saved["peak_accuracy"]) == 2 and isinstance(saved["num_parameters"], int)
    chosen = np.array(saved["chosen_configs"], bool)
    chex.assert_shape(chosen, (2, 4))
    (runner,) = runners
    for t, alpha in enumerate(runner.alphas):
        assert np.abs(alpha).max() > 0
        np.testing.assert_array_equal(chosen[t], np.argmax(alpha, axis=-1) == 1)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["task"] for r in records] == [0, 0, 1, 1]
    assert results["accuracy_matrix"][1][1] == results["final_accuracy"][1]


def test_finished_tasks_are_served_by_the_consolidated_model():
    """After `end_task`, earlier tasks read the kept shared params, not the last trained ones."""
    runner = darts.Darts(_config("darts", epochs=1), TASKS)
    x, y = jnp.asarray(TASKS[0].x_test), jnp.asarray(TASKS[0].y_test)
    num_layers = runner.models[0].num_layers
    for t, transfer in enumerate([True, False]):  # task 0 transfers every layer, task 1 none
        runner.start_task(t, jax.random.PRNGKey(t))
        runner.train_epoch(t, jnp.asarray(TASKS[t].x_train), jnp.asarray(TASKS[t].y_train), 1e-3)
        runner.alphas[t] = np.tile([0.0, 1.0] if transfer else [1.0, 0.0], (num_layers, 1))
        trained = runner.state.params["shared"]
        runner.end_task(t)
        if t == 0:
            shared0, logits0 = runner.shared, np.asarray(runner.logits(0, x))
            acc0 = runner.accuracy(0, x, y)
    assert runner.state is None
    chex.assert_trees_all_equal(runner.shared, shared0)  # rolled back: task 1 transfers none
    with pytest.raises(AssertionError):
        chex.assert_trees_all_equal(trained, shared0)  # task 1's training moved them
    np.testing.assert_array_equal(np.asarray(runner.logits(0, x)), logits0)
    assert runner.accuracy(0, x, y) == acc0 == pytest.approx(np.mean(logits0.argmax(-1) == y))
