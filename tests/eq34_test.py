"""The M-step gradient identity of Eq. 3-4, checked through the all-configurations model.

With J(params) = sum_c post_c * nll_c(params) (posterior held constant), the gradient w.r.t. a
layer's shared parameters must be the posterior-weighted sum of the per-configuration gradients
over the configurations that transfer that layer (Eq. 3), and w.r.t. its task-specific conv the
sum over those that do not (Eq. 4). J is computed with `apply_all` (shared prefixes), the
per-configuration gradients with `apply_config` one configuration at a time (vmapped).
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lasem_jax import build_model
from lasem_jax.core import em
from tests.param_utils import random_params

LEARNERS = ("hps", "tf", "dfcnn")
NUM_CLASSES = 5
BATCH = 3
INPUT_SHAPE = (8, 8, 3)
REL = 1e-5


class _Setup:
    """Model, data, and the two compiled gradient functions of one learner."""

    def __init__(self, learner):
        self.model = model = build_model(
            "cifar100_4", learner, NUM_CLASSES, width=0.125, input_shape=INPUT_SHAPE
        )
        rng = np.random.default_rng(7)
        self.params = random_params(model, 11)
        self.x = jnp.asarray(rng.standard_normal((BATCH, *INPUT_SHAPE)), jnp.float32)
        self.y = jnp.asarray(rng.integers(0, NUM_CLASSES, BATCH))
        self.configs = jnp.asarray(model.configs)

        def objective(params, post):
            return em.m_step_loss(post, em.per_config_nll(model.apply_all(params, self.x), self.y))

        def nll_one(params, config):
            logits = model.apply_config(params, self.x, config)
            return em.per_config_nll(logits[None], self.y)[0]

        self.grad_j = jax.jit(jax.grad(objective))
        per_config = jax.jit(jax.vmap(jax.grad(nll_one), in_axes=(None, 0)))
        self.per_config = per_config(self.params, self.configs)  # leaves [C, ...]


_CACHE = {}


@pytest.fixture(scope="module", params=LEARNERS)
def setup(request):
    if request.param not in _CACHE:
        _CACHE[request.param] = _Setup(request.param)
    return _CACHE[request.param]


def _weighted(per_config_tree, weights):
    """sum_c weights[c] * tree[c] for every leaf."""
    return jax.tree_util.tree_map(lambda g: jnp.tensordot(weights, g, axes=1), per_config_tree)


def _assert_close_rel(actual, expected):
    """Leafwise closeness up to REL of each leaf's largest magnitude."""

    def check(a, e):
        scale = float(jnp.max(jnp.abs(e)))
        assert scale > 0, "expected gradient is all zero; the check would be vacuous"
        chex.assert_trees_all_close(a, e, rtol=REL, atol=REL * scale)

    jax.tree_util.tree_map(check, actual, expected)


def test_eq3_eq4_random_posterior(setup):
    """Shared grads sum over c_l = 1, task conv grads over c_l = 0, head grads over all c."""
    model, configs = setup.model, np.asarray(setup.model.configs)
    post = jnp.asarray(np.random.default_rng(3).dirichlet(np.ones(model.num_configs)), jnp.float32)
    grads = setup.grad_j(setup.params, post)
    chex.assert_tree_all_finite(grads)
    per = setup.per_config
    for layer in range(model.num_layers):
        name = f"layer_{layer}"
        transfers = jnp.asarray(configs[:, layer], jnp.float32)
        # Eq. 3: shared parameters and the learner's mapping of this layer.
        _assert_close_rel(grads["shared"][name], _weighted(per["shared"][name], post * transfers))
        if per["task"]["map"][name]:
            _assert_close_rel(
                grads["task"]["map"][name], _weighted(per["task"]["map"][name], post * transfers)
            )
        # Eq. 4: the task-specific conv of this layer.
        _assert_close_rel(
            grads["task"]["conv"][name],
            _weighted(per["task"]["conv"][name], post * (1.0 - transfers)),
        )
    _assert_close_rel(grads["task"]["head"], _weighted(per["task"]["head"], post))


def test_unused_parameters_get_zero_per_config_gradient(setup):
    """apply_config gives exactly zero gradient to the path a configuration does not use."""
    configs = np.asarray(setup.model.configs)
    per = setup.per_config
    for layer in range(setup.model.num_layers):
        name = f"layer_{layer}"
        specific = ~configs[:, layer]
        for leaf in jax.tree_util.tree_leaves(per["shared"][name]):
            assert not np.any(np.asarray(leaf)[specific])
            assert np.any(np.asarray(leaf)[~specific])
        for leaf in jax.tree_util.tree_leaves(per["task"]["conv"][name]):
            assert not np.any(np.asarray(leaf)[~specific])
            assert np.any(np.asarray(leaf)[specific])


@pytest.mark.parametrize("index", [0, 5, 10, 15])
def test_one_hot_posterior(setup, index):
    """A one-hot posterior trains exactly one configuration: unused paths get exact zeros."""
    model = setup.model
    config = np.asarray(model.configs[index])
    post = jax.nn.one_hot(index, model.num_configs, dtype=jnp.float32)
    grads = setup.grad_j(setup.params, post)
    for layer in range(model.num_layers):
        name = f"layer_{layer}"
        unused = grads["task"]["conv"][name] if config[layer] else grads["shared"][name]
        used = grads["shared"][name] if config[layer] else grads["task"]["conv"][name]
        for leaf in jax.tree_util.tree_leaves(unused):
            np.testing.assert_array_equal(np.asarray(leaf), 0.0)
        assert any(np.any(np.asarray(leaf)) for leaf in jax.tree_util.tree_leaves(used))
        if not config[layer]:
            for leaf in jax.tree_util.tree_leaves(grads["task"]["map"][name]):
                np.testing.assert_array_equal(np.asarray(leaf), 0.0)
    # The whole gradient is that configuration's own gradient.
    own = jax.tree_util.tree_map(lambda g: g[index], setup.per_config)
    _assert_close_rel(
        {k: v for k, v in grads["task"].items() if k == "head"},
        {k: v for k, v in own["task"].items() if k == "head"},
    )
    for layer in range(model.num_layers):
        name = f"layer_{layer}"
        key = ("shared",) if config[layer] else ("task", "conv")
        got, want = grads, own
        for k in (*key, name):
            got, want = got[k], want[k]
        _assert_close_rel(got, want)
