"""Tests of Progressive Neural Networks: laterals, frozen columns and a full lifelong run."""

import json

import chex
import jax
import numpy as np
import pytest

from lasem_jax.baselines import BASELINES, prognn
from lasem_jax.networks import layers
from lasem_jax.networks.model import count_params
from lasem_jax.training import trainer
from tests.trainer_test import TASKS, _config, _task


@pytest.mark.parametrize(
    ("c_in", "num_prev", "scale", "expected"),
    [(32, 1, 2.0, 8), (32, 2, 2.0, 5), (64, 1, 1.0, 32), (3, 3, 2.0, 1), (4, 1, 2.0, 1)],
)
def test_lateral_channels_formula(c_in, num_prev, scale, expected):
    """Reduced channels = int(c_in / (scale * (#previous columns + 1))), at least 1."""
    assert prognn.lateral_channels(c_in, num_prev, scale) == expected


def test_column_has_one_lateral_per_earlier_column_from_layer_one():
    """Column 2 gets two adapters at every conv layer but the first, of the formula's sizes."""
    arch = prognn.ProgNN(_config("prognn"), TASKS).arch
    column = prognn.init_column(
        layers.generator(jax.random.PRNGKey(0)), arch, 2, 5, scale=2.0, he=False
    )
    assert sorted(column["lateral"]) == [f"layer_{i}" for i in range(1, arch.num_layers)]
    for i in range(1, arch.num_layers):
        c_in, layer = arch.in_channels(i), arch.layers[i]
        n = prognn.lateral_channels(c_in, 2, 2.0)
        adapters = column["lateral"][f"layer_{i}"]
        assert len(adapters) == 2
        for adapter in adapters:
            chex.assert_shape(adapter["alpha"], (1,))
            chex.assert_shape(adapter["u"]["w"], (1, 1, c_in, n))
            chex.assert_shape(adapter["v"], (layer.kernel, layer.kernel, n, layer.channels))
    chex.assert_shape(column["head"]["out"]["w"], (arch.fc_hidden[-1], 5))


def test_laterals_feed_earlier_columns_into_the_new_one():
    """Column 1's logits depend on its alphas and on column 0's convs, not on column 0's head."""
    config = _config("prognn")
    config.model.he_init = True  # keeps signals through the tiny untrained net
    method = prognn.ProgNN(config, TASKS)
    method.start_task(0, jax.random.PRNGKey(0))
    method.start_task(1, jax.random.PRNGKey(1))
    col0, col1 = method.columns
    x = TASKS[1].x_test

    apply = jax.jit(prognn.progressive_logits, static_argnums=0)

    def logits(frozen, column):
        return np.asarray(apply(method.arch, frozen, column, x))

    base = logits([col0], col1)
    chex.assert_shape(base, (len(x), TASKS[1].num_classes))
    no_alpha = jax.tree_util.tree_map_with_path(
        lambda path, v: 0 * v if "alpha" in jax.tree_util.keystr(path) else v, col1
    )
    assert np.abs(logits([col0], no_alpha) - base).max() > 1e-2
    scaled_convs = {**col0, "conv": jax.tree.map(lambda v: 3 * v, col0["conv"])}
    assert np.abs(logits([scaled_convs], col1) - base).max() > 1e-2
    scaled_head = {**col0, "head": jax.tree.map(lambda v: 3 * v, col0["head"])}
    np.testing.assert_array_equal(logits([scaled_head], col1), base)


def test_lifelong_run_freezes_earlier_columns_and_writes_results(tmp_path, monkeypatch):
    """A 2-task run: column 0 stays bitwise fixed, so task 0's test accuracy never moves."""
    assert BASELINES["prognn"] is prognn.ProgNN
    snapshots = []
    start_task, end_task = prognn.ProgNN.start_task, prognn.ProgNN.end_task

    def recording(method):
        def run(self, t, *args):
            method(self, t, *args)
            snapshots.append((self, jax.tree.map(np.array, self.columns)))

        return run

    monkeypatch.setattr(prognn.ProgNN, "start_task", recording(start_task))
    monkeypatch.setattr(prognn.ProgNN, "end_task", recording(end_task))
    tasks = [TASKS[0], _task(2, num_classes=4)]
    trainer.train_lifelong(tasks, _config("prognn"), workdir=str(tmp_path))
    (method, start0), (_, end0), (_, start1), (_, end1) = snapshots
    for t, (before, after) in enumerate([(start0, end0), (start1, end1)]):
        with pytest.raises(AssertionError):
            chex.assert_trees_all_equal(after[t], before[t])
    chex.assert_trees_all_equal(start1[0], end0[0])
    chex.assert_trees_all_equal(end1[0], end0[0])
    chex.assert_shape(end1[1]["head"]["out"]["b"], (4,))

    results = json.loads((tmp_path / "results.json").read_text())
    assert results["method"] == "prognn" and results["chosen_configs"] is None
    for value in results["peak_accuracy"] + results["final_accuracy"]:
        assert 0.0 <= value <= 1.0
    matrix = results["accuracy_matrix"]
    assert matrix[1][0] == matrix[0][0] == results["final_accuracy"][0]
    ratio = results["forgetting_ratio"][0]
    assert ratio == pytest.approx(matrix[0][0] / results["peak_accuracy"][0])
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["test"][0] for r in records if r["task"] == 1] == [matrix[0][0]] * 2
    sizes = [count_params(column) for column in end1]
    assert results["num_parameters"] == sum(sizes) == method.num_parameters()
    assert sizes[1] > sizes[0]
    assert isinstance(results["train_seconds"], float) and results["train_seconds"] > 0
