"""Tests of end-of-task consolidation: keep, roll back, discard, re-initialise, count."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

from lasem_jax import build_model
from lasem_jax.networks import consolidate

MODEL = build_model("cifar100_4", "tf", 3, width=0.125, input_shape=(8, 8, 1))


def _perturbed(tree, delta):
    return jax.tree_util.tree_map(lambda x: x + delta, tree)


def test_consolidate_keeps_rolls_back_and_discards():
    """Transferring layers keep new shared params and drop convs; others roll back, drop maps."""
    params = MODEL.init(jax.random.PRNGKey(0))
    before = params["shared"]
    after = _perturbed(before, 1.0)
    config = np.array([True, False, True, False])
    shared, frozen, alive = consolidate.consolidate(
        before, after, params["task"], config, np.zeros(4, bool)
    )
    for i, transfers in enumerate(config):
        name = f"layer_{i}"
        if transfers:
            chex.assert_trees_all_equal(shared[name], after[name])
            chex.assert_trees_all_equal(frozen["map"][name], params["task"]["map"][name])
            assert all(not jnp.any(v) for v in jax.tree_util.tree_leaves(frozen["conv"][name]))
        else:
            chex.assert_trees_all_equal(shared[name], before[name])
            chex.assert_trees_all_equal(frozen["conv"][name], params["task"]["conv"][name])
            assert all(not jnp.any(v) for v in jax.tree_util.tree_leaves(frozen["map"][name]))
    chex.assert_trees_all_equal(frozen["head"], params["task"]["head"])
    np.testing.assert_array_equal(alive, config)


def test_consolidated_task_output_unchanged_for_its_config():
    """Discarding unused tensors does not change the task's own network."""
    params = MODEL.init(jax.random.PRNGKey(1))
    config = np.array([False, True, True, False])
    shared, frozen, _ = consolidate.consolidate(
        params["shared"], params["shared"], params["task"], config, np.zeros(4, bool)
    )
    x = jax.random.normal(jax.random.PRNGKey(2), (4, 8, 8, 1))
    chex.assert_trees_all_close(
        MODEL.apply_config({"shared": shared, "task": frozen}, x, config),
        MODEL.apply_config(params, x, config),
        atol=1e-6,
    )


def test_refresh_dead_layers_reinitialises_only_dead_layers():
    """Shared layers no finished task transfers are re-drawn; live ones are kept."""
    shared = MODEL.init_shared(jax.random.PRNGKey(3))
    alive = np.array([True, False, True, False])
    fresh = consolidate.refresh_dead_layers(MODEL, shared, alive, jax.random.PRNGKey(4))
    for i, live in enumerate(alive):
        same = all(
            bool(jnp.array_equal(a, b))
            for a, b in zip(
                jax.tree_util.tree_leaves(fresh[f"layer_{i}"]),
                jax.tree_util.tree_leaves(shared[f"layer_{i}"]),
                strict=True,
            )
        )
        assert same == live


def test_live_parameter_count():
    """Counts shared params of transferred layers plus each task's live tensors and head."""
    params = MODEL.init(jax.random.PRNGKey(5))
    config = np.array([True, True, False, False])
    count = consolidate.live_parameter_count(params["shared"], [params["task"]], [config])
    size = lambda tree: sum(np.size(x) for x in jax.tree_util.tree_leaves(tree))  # noqa: E731
    expected = size(params["task"]["head"])
    expected += sum(size(params["shared"][f"layer_{i}"]) for i in (0, 1))
    expected += sum(size(params["task"]["map"][f"layer_{i}"]) for i in (0, 1))
    expected += sum(size(params["task"]["conv"][f"layer_{i}"]) for i in (2, 3))
    assert count == expected
