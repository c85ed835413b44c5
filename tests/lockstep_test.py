"""Tests of lockstep runs: seeds as a vmapped batch axis equal one-after-another runs."""

import chex
import jax
import numpy as np
import pytest

from lasem_jax.engine import lockstep, steps
from lasem_jax.training import trainer
from tests.trainer_test import _config, _task

TASK_LISTS = [[_task(0), _task(1)], [_task(2), _task(3)], [_task(4), _task(5)]]


def _configs(method: str):
    configs = []
    for seed in range(3):
        c = _config(method)
        c.seed = seed
        c.brute_force.batch_candidates = 1  # candidates through the driver: seeds batch
        configs.append(c)
    return configs


def _strip(results: list[dict]) -> list[dict]:
    for r in results:
        r.pop("train_seconds")
        for s in r.get("search") or []:
            s.pop("seconds")
    return results


def batch_sizes(monkeypatch) -> list[int]:
    """The number of runs of every batched epoch call from now on (the list fills up)."""
    sizes = []
    batched = lockstep.jitted_batched_epoch

    def counting(*args):
        sizes.append(args[4].shape[0])
        return batched(*args)

    monkeypatch.setattr(lockstep, "jitted_batched_epoch", counting)
    return sizes


@pytest.mark.parametrize("method", ["lasem", "static", "brute_force"])
def test_vmapped_seeds_equal_sequential_seeds(method, monkeypatch):
    """Three seeds in one vmapped epoch call give the results of three separate runs."""
    calls = batch_sizes(monkeypatch)
    configs = _configs(method)
    together = trainer.train_lifelong_seeds(TASK_LISTS, configs, vmap=True)
    assert calls and set(calls) == {3}, "the seeds were not batched"
    apart = trainer.train_lifelong_seeds(TASK_LISTS, configs, vmap=False)
    single = [trainer.train_lifelong(t, c) for t, c in zip(TASK_LISTS, configs, strict=True)]
    assert _strip(together) == _strip(apart) == _strip(single)
    assert together[0]["prior_history"] != together[1]["prior_history"] or method != "lasem"


def test_batched_epoch_matches_single_epochs():
    """The vmapped epoch's parameters equal each run's own epoch (float tolerance)."""
    model = trainer.make_model(_config(), TASK_LISTS[0][0])
    hp = trainer.run_config.step_config(_config())
    requests = []
    for seed, tasks in enumerate(TASK_LISTS):
        params = model.init(jax.random.PRNGKey(seed))
        state = steps.init_state(model, hp, params, jax.random.PRNGKey(seed), 1e-3)
        x, y = np.asarray(tasks[0].x_train), np.asarray(tasks[0].y_train)
        requests.append(lockstep.EpochRequest(model, hp, state, x, y, 1e-3, np.ones(4, bool)))
    together, _ = lockstep._train(requests)
    for request, (state, out) in zip(requests, together, strict=True):
        alone, alone_out = lockstep._train([request])[0][0]
        chex.assert_trees_all_close(state.params, alone.params, atol=1e-6)
        np.testing.assert_allclose(out["losses"], alone_out["losses"], rtol=1e-5)


def test_runs_of_different_shapes_fall_back_to_one_by_one():
    """Runs whose tasks differ in size are not batched but still train correctly."""
    lists = [[_task(0, n=30)], [_task(1, n=40)]]
    configs = _configs("static")[:2]
    for c in configs:
        c.train.epochs_per_task = 1
    together = trainer.train_lifelong_seeds(lists, configs, vmap=True)
    apart = trainer.train_lifelong_seeds(lists, configs, vmap=False)
    assert _strip(together) == _strip(apart)


def test_mismatched_lengths_rejected():
    """One task list per config, or a clear error."""
    with pytest.raises(ValueError, match="task lists"):
        trainer.train_lifelong_seeds(TASK_LISTS[:2], _configs("lasem"))
