"""Tests of the single-network baseline (docs/protocol.md §10) and the baselines' common loop."""

import itertools
import json

import jax
import numpy as np
import pytest

from lasem_jax.baselines import SingleNetwork, base
from lasem_jax.networks.model import count_params
from lasem_jax.training import trainer
from tests.trainer_test import TASKS, _config, _task


def test_runs_and_writes_results(tmp_path):
    """2 tasks x 2 epochs: valid results.json and one metrics line per epoch."""
    trainer.train_lifelong(TASKS, _config("single_network"), workdir=str(tmp_path))
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["method"] == "single_network" and results["num_tasks"] == 2
    assert all(0 <= a <= 1 for a in results["peak_accuracy"] + results["final_accuracy"])
    assert results["chosen_configs"] is None and results["train_seconds"] > 0
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 4


def test_one_set_of_parameters_for_every_task():
    """The parameter count is one network's, whatever the number of tasks; all tasks share it."""
    config = _config("single_network")
    runner = SingleNetwork(config, [_task(0), _task(1), _task(2)])
    sizes = []
    for t in range(3):
        runner.start_task(t, jax.random.PRNGKey(t))
        sizes.append(runner.num_parameters())
        x, y = np.asarray(TASKS[0].x_val), np.asarray(TASKS[0].y_val)
        assert runner.accuracy(0, x, y) == runner.accuracy(t, x, y)
    assert sizes[0] == sizes[1] == sizes[2] == count_params(runner.params)
    arch = runner.arch
    convs = sum(
        layer.kernel**2 * arch.in_channels(i) * layer.channels + layer.channels
        for i, layer in enumerate(arch.layers)
    )
    fc = [arch.feature_dim, *arch.fc_hidden, 3]
    head = sum(a * b + b for a, b in itertools.pairwise(fc))
    assert sizes[0] == convs + head


def test_training_changes_the_shared_network():
    runner = SingleNetwork(_config("single_network"), list(TASKS))
    runner.start_task(0, jax.random.PRNGKey(0))
    before = jax.tree_util.tree_map(np.array, runner.params)
    losses = runner.train_epoch(0, np.asarray(TASKS[0].x_train), np.asarray(TASKS[0].y_train), 1e-3)
    assert losses.shape == (TASKS[0].num_train // 10,) and np.isfinite(losses).all()
    changed = jax.tree_util.tree_map(lambda a, b: not np.array_equal(a, b), before, runner.params)
    assert all(jax.tree_util.tree_leaves(changed))


def test_unequal_class_counts_rejected():
    with pytest.raises(ValueError, match="same number of classes"):
        trainer.train_lifelong([_task(0), _task(1, num_classes=4)], _config("single_network"))


def test_conv_stack_matches_plain_layers():
    """base.conv_stack with plain layers returns the pooled features and every layer input."""
    runner = SingleNetwork(_config("single_network"), list(TASKS))
    runner.start_task(0, jax.random.PRNGKey(0))
    x = np.asarray(TASKS[0].x_val)
    feats, inputs = base.conv_stack(runner.arch, x, base.plain_layer(runner.params["conv"]))
    assert len(inputs) == runner.arch.num_layers and inputs[0] is x
    assert feats.shape == (x.shape[0], runner.arch.feature_dim)
