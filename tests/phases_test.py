"""Tests of LASEM's optional warm-up and fine-tuning epochs of each task (em.*_epochs)."""

import dataclasses
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lasem_jax.config import run_config
from lasem_jax.core import em
from lasem_jax.engine import steps
from lasem_jax.training import trainer
from tests.steps_test import LASEM_STEP, MODEL, X, Y, _state
from tests.trainer_test import TASKS, _config


def test_warmup_step_weights_every_configuration_equally_and_keeps_the_prior():
    """A warm-up step is the fixed-prior step with probability 1/C everywhere."""
    hp = steps.StepConfig(warmup=True)
    state = _state(hp)  # Scaled so that configurations differ: a peaked likelihood.
    state = state._replace(params=jax.tree.map(lambda p: 8 * p, state.params))
    new, (loss, post) = LASEM_STEP(MODEL, hp, state, X, Y)
    chex.assert_trees_all_equal(new.prior, state.prior)  # counts and count unchanged

    uniform = dataclasses.replace(hp, warmup=False, prior="fixed", fixed_prob=1 / 16)
    fixed_state = _state(uniform)._replace(params=state.params)
    ref, (ref_loss, ref_post) = LASEM_STEP(MODEL, uniform, fixed_state, X, Y)
    chex.assert_trees_all_close(new.params, ref.params, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(float(loss), float(ref_loss), rtol=1e-6)
    np.testing.assert_allclose(post, ref_post, rtol=1e-5)
    # The posterior is the uniform prior times the likelihood.
    ll = em.config_log_likelihood(MODEL.apply_all(state.params, X), Y)
    np.testing.assert_allclose(post, jax.nn.softmax(ll), rtol=1e-4, atol=1e-6)
    assert float(post.max()) > 0.5  # far from the uniform weights the warm-up uses

    # A peaked prior (config 15 won 1000 minibatches) moves the EM step, not the warm-up.
    peaked = state._replace(prior=em.PriorState(state.prior.stats.at[15].set(1e3), 1000))
    warm, _ = LASEM_STEP(MODEL, hp, peaked, X, Y)
    chex.assert_trees_all_close(warm.params, new.params, rtol=1e-6, atol=1e-7)
    em_step, _ = LASEM_STEP(MODEL, steps.StepConfig(), peaked, X, Y)
    assert int(em_step.prior.count) == 1001
    step_em = jax.tree.map(jnp.subtract, em_step.params, state.params)
    step_warm = jax.tree.map(jnp.subtract, new.params, state.params)
    with pytest.raises(AssertionError):
        chex.assert_trees_all_close(step_em, step_warm, rtol=0.1, atol=1e-6)


def test_phases_of_a_task():
    c = _config(epochs=5)
    c.em.warmup_epochs, c.em.finetune_epochs = 1, 2
    phases = [run_config.lasem_phase(c, e) for e in range(5)]
    assert phases == ["warmup", "em", "em", "finetune", "finetune"]
    c.em.warmup_epochs = 3
    with pytest.raises(ValueError, match=r"leave no EM epoch of the 5 epochs per task"):
        run_config.validate_settings(c, 4)
    c.method = "static"  # Only LASEM reads them.
    run_config.validate_settings(c, 4)
    c.em.finetune_epochs = -1
    with pytest.raises(ValueError, match=r"config.em.finetune_epochs=-1 must be an integer >= 0"):
        run_config.validate_settings(c, 4)


def test_run_with_warmup_and_finetune(tmp_path):
    """Phases in the records; fine-tuning trains the argmax-prior configuration alone."""
    c = _config(epochs=4)
    c.em.warmup_epochs, c.em.finetune_epochs = 1, 1
    results = trainer.train_lifelong(TASKS, c, workdir=str(tmp_path))
    records = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert [r["phase"] for r in records] == ["warmup", "em", "em", "finetune"] * 2
    assert all(("posterior" in r) == (r["phase"] != "finetune") for r in records)
    for t in range(2):
        history = results["prior_history"][t]
        assert len(history) == 4
        assert np.allclose(history[0], 1 / 16)  # the prior does not move in the warm-up
        assert history[3] == history[2]  # nor in fine-tuning
        chosen = "".join(str(b) for b in results["chosen_configs"][t])
        assert [r["config"] for r in records if r["task"] == t][2:] == [chosen, chosen]
    # With no fine-tuning the last epoch is an EM epoch: a different run.
    c.em.finetune_epochs = 0
    other = trainer.train_lifelong(TASKS, c)
    assert other["prior_history"][0][:3] == results["prior_history"][0][:3]
    assert other["prior_history"][0][3] != results["prior_history"][0][3]


def test_finetune_epochs_train_beside_static_runs():
    """A fine-tuning epoch uses the static step with a [C] prior: never batched with statics."""
    lasem, static = _config(epochs=2), _config("static", epochs=2)
    lasem.em.finetune_epochs = 1
    together = trainer.train_lifelong_seeds([TASKS, TASKS], [lasem, static], vmap=True)
    alone = trainer.train_lifelong(TASKS, lasem)
    assert together[0]["chosen_configs"] == alone["chosen_configs"]
    np.testing.assert_allclose(together[0]["final_accuracy"], alone["final_accuracy"], atol=1e-6)
    assert together[1]["chosen_configs"] == [[1, 1, 1, 1]] * 2
