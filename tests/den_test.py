"""Tests of DEN: growth when forced, none otherwise, timestamp masking, pruning, split."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lasem_jax import baselines
from lasem_jax.baselines import base, den_math
from lasem_jax.baselines.den import DEN
from lasem_jax.networks import layers
from lasem_jax.networks.architectures import get_architecture
from lasem_jax.training import trainer
from tests.trainer_test import TASKS, _config

ARCH = get_architecture("cifar100_4", width=0.125, input_shape=(8, 8, 1))
SPATIAL = 4  # 8x8 pooled twice by 2
X = jnp.asarray(TASKS[0].x_test)


class _Recorded(DEN):
    """DEN that keeps itself and task 0's logits at the end of task 0, for inspection."""

    last: "_Recorded"

    def __init__(self, *args) -> None:
        super().__init__(*args)
        _Recorded.last = self

    def end_task(self, t: int) -> None:
        super().end_task(t)
        if t == 0:
            self.logits_after_task0 = np.asarray(self.logits(0, X))
            self.convs_after_task0 = self.convs


def _run(tmp_path, loss_threshold: float, **den) -> tuple[dict, _Recorded]:
    cfg = _config("den")
    cfg.den.expansion_size, cfg.den.loss_threshold = 2, loss_threshold
    cfg.den.update(den)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(baselines.BASELINES, "den", _Recorded)
        results = trainer.train_lifelong(TASKS, cfg, workdir=str(tmp_path))
    assert json.loads((tmp_path / "results.json").read_text())["num_tasks"] == 2
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 4
    return results, _Recorded.last


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """Forced growth (no pruning) and no growth (no split), 2 tasks x 2 epochs each."""
    return {
        "grow": _run(tmp_path_factory.mktemp("grow"), 0.0, sparsity_thresholds=(0.98, 0.0)),
        "still": _run(tmp_path_factory.mktemp("still"), 1e9, split_threshold=1e9),
    }


def test_grows_by_expansion_size_when_loss_stays_high(runs):
    """loss_threshold 0: every layer gains expansion_size channels; parameters increase."""
    (results, runner), (still, _) = runs["grow"], runs["still"]
    assert runner.timestamps == [[4, 4, 8, 8], [6, 6, 10, 10]]
    assert results["num_parameters"] == runner.num_parameters() > still["num_parameters"]
    assert all(0.0 <= a <= 1.0 for a in results["peak_accuracy"] + results["final_accuracy"])


def test_no_growth_below_threshold(runs):
    """loss_threshold 1e9 (never exceeded): the network keeps its widths and size."""
    results, runner = runs["still"]
    assert runner.timestamps == [[4, 4, 8, 8], [4, 4, 8, 8]]
    assert runner.widths == [4, 4, 8, 8]
    first = count = sum(np.size(v) for v in jax.tree.leaves(runner.convs))
    count += sum(np.size(v) for v in jax.tree.leaves(runner.heads))
    assert results["num_parameters"] == count and first > 0


def test_units_added_later_leave_old_task_unchanged(runs):
    """Task 1 (head epoch, then new units only) leaves task 0's units and logits unchanged."""
    results, runner = runs["grow"]
    for name, old in runner.convs_after_task0.items():
        c_in, c_out = old["w"].shape[2:]
        np.testing.assert_array_equal(runner.convs[name]["w"][:, :, :c_in, :c_out], old["w"])
        np.testing.assert_array_equal(runner.convs[name]["b"][:c_out], old["b"])
    logits = np.asarray(runner.logits(0, X))
    np.testing.assert_allclose(logits, runner.logits_after_task0, rtol=1e-6, atol=1e-6)
    assert [m.sum() for m in runner.masks[0]] == [4, 4, 8, 8]
    assert [m.all() for m in runner.masks[1]] == [True] * 4
    assert results["accuracy_matrix"][1][0] == results["accuracy_matrix"][0][0]


def _net(seed: int = 0) -> tuple[base.Params, list[base.Params]]:
    gen = np.random.default_rng(seed)
    convs = base.init_plain_convs(gen, ARCH, he=False)
    heads = [layers.init_head(gen, SPATIAL * 8, (8,), 3, he=False) for _ in range(2)]
    return convs, heads


def _logits(convs, head, masks) -> np.ndarray:
    masks = [jnp.asarray(m, jnp.float32) for m in masks]
    return np.asarray(den_math.den_logits(ARCH, convs, head, masks, X))


def _ones(convs) -> list[np.ndarray]:
    return [np.ones(convs[f"layer_{i}"]["b"].shape[0], bool) for i in range(len(convs))]


def test_expansion_changes_no_task_output():
    """New units (random in, zero out) leave every task's logits unchanged, masked or not."""
    convs, heads = _net()
    before = [_logits(convs, h, _ones(convs)) for h in heads]
    gen = np.random.default_rng(1)
    c_in = 1
    for i, layer in enumerate(ARCH.layers):
        new = layers.init_conv(gen, layer.kernel, c_in, 2, he=False)
        convs, heads = den_math.expand_layer(convs, heads, i, new, SPATIAL)
        c_in = convs[f"layer_{i}"]["b"].shape[0]
    assert [convs[f"layer_{i}"]["b"].shape[0] for i in range(4)] == [6, 6, 10, 10]
    for head, ref in zip(heads, before, strict=True):
        np.testing.assert_allclose(_logits(convs, head, _ones(convs)), ref, atol=1e-5)


def test_select_units_keeps_the_mass():
    """The fewest most important units holding the requested share of the L1 mass."""
    importance = np.array([0.5, 0.0, 3.0, 1.5])
    np.testing.assert_array_equal(den_math.select_units(importance, 0.98), [1, 0, 1, 1])
    np.testing.assert_array_equal(den_math.select_units(importance, 0.5), [0, 0, 1, 0])


def test_group_lasso_pruning_removes_only_dead_new_units():
    """A new unit with a ~0 group goes (with its outgoing rows); old and live new units stay."""
    convs, heads = _net()
    layer = convs["layer_3"]
    w = layer["w"].at[..., 0].set(0.0).at[..., 7].set(1e-4)
    convs = {**convs, "layer_3": {"w": w, "b": layer["b"].at[jnp.array([0, 7])].set(0.0)}}
    is_new = np.arange(8) >= 6
    pruned, new_heads, keep = den_math.prune_units(convs, heads, 3, is_new, 0.01, SPATIAL)
    np.testing.assert_array_equal(keep, [0, 1, 2, 3, 4, 5, 6])
    assert pruned["layer_3"]["w"].shape[-1] == 7
    rows = heads[0]["fc_0"]["w"].reshape(SPATIAL, 8, -1)[:, :7].reshape(-1, 8)
    np.testing.assert_array_equal(new_heads[0]["fc_0"]["w"], rows)
    ref = _logits(convs, heads[0], _ones(convs))
    np.testing.assert_allclose(_logits(pruned, new_heads[0], _ones(pruned)), ref, atol=1e-4)


def test_split_restores_old_units_and_keeps_new_task_output():
    """A drifted unit is duplicated: old tasks see its old value, the new task its new one."""
    prev, heads = _net()
    drifted_w = prev["layer_1"]["w"].at[..., 2].add(0.3)
    convs = {**prev, "layer_1": {**prev["layer_1"], "w": drifted_w}}
    drift = den_math.unit_drift(convs["layer_1"], prev["layer_1"])
    np.testing.assert_array_equal(np.flatnonzero(drift > 0.05), [2])
    new_task = _logits(convs, heads[1], _ones(convs))
    old_task = _logits(prev, heads[0], _ones(prev))
    split, new_heads = den_math.split_units(
        convs, heads, 1, np.array([2]), prev["layer_1"], SPATIAL
    )
    assert split["layer_1"]["w"].shape[-1] == 5 and split["layer_2"]["w"].shape[2] == 5
    np.testing.assert_array_equal(split["layer_1"]["w"][..., 2], prev["layer_1"]["w"][..., 2])
    np.testing.assert_array_equal(split["layer_1"]["w"][..., 4], drifted_w[..., 2])
    new_mask, old_mask = _ones(split), _ones(split)
    new_mask[1][2], old_mask[1][4] = False, False
    np.testing.assert_allclose(_logits(split, new_heads[1], new_mask), new_task, atol=1e-5)
    np.testing.assert_allclose(_logits(split, new_heads[0], old_mask), old_task, atol=1e-5)


def test_frozen_entries_get_no_gradient():
    """The loss's gradient is zero wherever the gradient mask is 0 (selective retraining)."""
    convs, heads = _net()
    out = [np.array([1, 0, 1, 0], np.float32), *[np.ones(c, np.float32) for c in (4, 8, 8)]]
    grad = jax.tree.map(jnp.ones_like, {"convs": convs, "head": heads[0]})
    grad["convs"]["layer_0"] = {"w": jnp.asarray(out[0]), "b": jnp.asarray(out[0])}
    frozen = {
        "grad": grad,
        "masks": tuple(jnp.ones(c) for c in (4, 4, 8, 8)),
        "prev": {name: conv["w"] for name, conv in convs.items()},
        "new": tuple(jnp.asarray(m) for m in out),
        "coef": {"l1": 1e-3, "l2": 1e-2, "drift": 0.5, "gl": 0.8},
    }
    params = {"convs": convs, "head": heads[0]}
    y = jnp.asarray(TASKS[0].y_test)
    g = jax.grad(den_math.den_loss, argnums=1)(ARCH, params, frozen, X, y, jax.random.PRNGKey(0))
    np.testing.assert_array_equal(g["convs"]["layer_0"]["w"][..., 1], 0.0)
    np.testing.assert_array_equal(g["convs"]["layer_0"]["b"][jnp.array([1, 3])], 0.0)
    assert np.abs(g["convs"]["layer_0"]["w"][..., 0]).sum() > 0
