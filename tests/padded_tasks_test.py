"""Tests of padded epochs: tasks of unequal training sizes share one compiled epoch, exactly."""

import chex
import jax
import numpy as np
import pytest

from lasem_jax.engine import lockstep, steps
from lasem_jax.training import trainer
from tests.trainer_test import _config, _task

UNEQUAL = [_task(0, n=30), _task(1, n=47), _task(2, n=30)]


@pytest.mark.parametrize(("n", "size"), [(1, 1), (7, 20), (30, 47), (1625, 1700), (1626, 1700)])
def test_epoch_order_is_jax_permutation_then_padding(n, size):
    """The first `n` entries are `jax.random.permutation(key, n)` (across a round boundary)."""
    for seed in range(2):
        key = jax.random.PRNGKey(seed)
        order = np.asarray(jax.jit(steps.epoch_order, static_argnums=2)(key, n, size))
        np.testing.assert_array_equal(order[:n], np.asarray(jax.random.permutation(key, n)))
        np.testing.assert_array_equal(order[n:], np.arange(n, size))


def _computed(results: dict) -> dict:
    """The results but the wall time and the config (which differs in `train.pad_tasks`)."""
    return {k: v for k, v in results.items() if k not in ("train_seconds", "config")}


@pytest.mark.parametrize("method", ["lasem", "static"])
def test_unequal_tasks_compile_once_with_unpadded_results(monkeypatch, method):
    """Padded, the three tasks trace `train_epoch` once; results equal unpadded training."""
    unpadded = _config(method)
    unpadded.train.pad_tasks = False
    want = trainer.train_lifelong(UNEQUAL, unpadded)
    counted = jax.jit(chex.assert_max_traces(steps.train_epoch, n=1), static_argnums=(0, 1))
    monkeypatch.setattr(lockstep, "jitted_train_epoch", counted)
    got = trainer.train_lifelong(UNEQUAL, _config(method))
    chex.clear_trace_counter()
    assert _computed(got) == _computed(want)


def test_padded_runs_batch_together_with_their_own_results():
    """Two seeds padded and batched give the results each gives trained alone, unpadded."""
    configs = []
    for seed in range(2):
        config = _config("static")
        config.seed = seed
        configs.append(config)
    batched = trainer.train_lifelong_seeds([UNEQUAL] * 2, configs, vmap=True)
    for config, got in zip(configs, batched, strict=True):
        config.train.pad_tasks = False
        want = trainer.train_lifelong(UNEQUAL, config)
        assert _computed(got) == _computed(want)
