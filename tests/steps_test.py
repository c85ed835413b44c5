"""Tests of the training steps: multiple M-steps, the fixed prior, static steps' gradients."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

from lasem_jax import build_model
from lasem_jax.core import em, search_space
from lasem_jax.engine import steps

MODEL = build_model("cifar100_4", "hps", 3, width=0.125, input_shape=(8, 8, 1))
LASEM_STEP = jax.jit(steps.lasem_step, static_argnums=(0, 1))
X = jnp.asarray(np.random.default_rng(0).random((4, 8, 8, 1)), jnp.float32)
Y = jnp.array([0, 1, 2, 0])


def _state(hp):
    params = MODEL.init(jax.random.PRNGKey(0))
    return steps.init_state(MODEL, hp, params, jax.random.PRNGKey(1), 1e-3)


def test_num_m_steps_takes_that_many_optimiser_steps_per_minibatch():
    """num_m_steps=3 applies three updates for one E-step and one prior update."""
    hp = steps.StepConfig(num_m_steps=3)
    state, (loss, post) = LASEM_STEP(MODEL, hp, _state(hp), X, Y)
    assert int(state.opt_state.count) == 3
    assert int(state.prior.count) == 1
    chex.assert_tree_all_finite((state.params, loss, post))
    np.testing.assert_allclose(float(post.sum()), 1.0, rtol=1e-6)


def test_fixed_prior_weights_gradients_and_never_moves():
    """The fixed prior is the gradient weight and stays put, so its configuration is chosen."""
    hp = steps.StepConfig(prior="fixed", fixed_config="top2", fixed_prob=0.7)
    state = _state(hp)
    log_prior = steps.make_prior(MODEL, hp).log_prob(state.prior)
    index = search_space.config_index(MODEL.configs, search_space.named_config("top2", 4))
    assert int(jnp.argmax(log_prior)) == index
    np.testing.assert_allclose(float(jnp.exp(log_prior)[index]), 0.7, rtol=1e-6)

    def objective(params):
        nll = em.per_config_nll(MODEL.apply_all(params, X, train=True, rng=key), Y)
        return em.m_step_loss(jnp.exp(log_prior), nll)

    key = jax.random.split(state.rng, 2)[1]  # the dropout key lasem_step draws
    expected_loss = jax.jit(objective)(state.params)
    new_state, (loss, _) = LASEM_STEP(MODEL, hp, state, X, Y)
    np.testing.assert_allclose(float(loss), float(expected_loss), rtol=1e-5)
    chex.assert_trees_all_equal(new_state.prior.stats, state.prior.stats)


def test_static_step_without_transfer_leaves_shared_parameters_unchanged():
    """A configuration with no transferring layer gives the shared parameters zero updates."""
    hp = steps.StepConfig(method="static")
    state = _state(hp)
    step = jax.jit(steps.static_step, static_argnums=(0,))
    new_state, loss = step(MODEL, state, X, Y, jnp.zeros(4, bool))
    assert np.isfinite(float(loss))
    chex.assert_trees_all_equal(new_state.params["shared"], state.params["shared"])
    changed = jax.tree_util.tree_map(
        lambda a, b: bool(jnp.any(a != b)),
        new_state.params["task"]["conv"],
        state.params["task"]["conv"],
    )
    assert all(jax.tree_util.tree_leaves(changed))
