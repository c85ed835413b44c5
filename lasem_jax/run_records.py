"""What a LASEM-family run records: per-epoch records, evaluations, the kept rows, results."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from lasem_jax import consolidate, loop_utils, run_state, search_space, steps
from lasem_jax.model import Model
from lasem_jax.task import Task


def evaluate(
    accuracy: Callable[..., jax.Array],
    seen: list[tuple],
    model: Model,
    splits: dict,
    state: steps.TrainState,
    current: np.ndarray,
) -> dict[str, list[float]]:
    """Validation and test accuracy of every seen task, the current one with `current`."""
    live = [*seen, (model, state.params["task"], jnp.asarray(current), splits)]
    shared_now = state.params["shared"]
    return {
        split: [
            float(accuracy(m, {"shared": shared_now, "task": p}, c, *data[split]))
            for m, p, c, data in live
        ]
        for split in ("val", "test")
    }


def kept_row(
    accuracy: Callable[..., jax.Array],
    models: list[Model],
    run: run_state.Run,
    tests: list[tuple[jax.Array, jax.Array]],
) -> list[float]:
    """Test accuracy of every finished task with the consolidated (kept) parameters."""
    return [
        float(accuracy(models[k], {"shared": run.shared, "task": task}, jnp.asarray(c), *test))
        for k, (task, c, test) in enumerate(zip(run.finished, run.chosen, tests, strict=True))
    ]


def epoch_record(
    run: run_state.Run,
    model: Model,
    hp: steps.StepConfig,
    out: dict,
    current: np.ndarray,
    lr: float,
) -> dict[str, Any]:
    """The metrics record of the epoch just trained (accuracies are added by the caller)."""
    record = {"task": run.task, "epoch": run.epoch, "global_epoch": run.global_epoch, "lr": lr}
    record["loss"] = float(np.mean(out["losses"]))
    record["config"] = search_space.config_to_string(current)
    if hp.method == "lasem":
        prior = np.exp(np.asarray(steps.make_prior(model, hp).log_prob(run.state.prior)))
        run.prior_history[run.task].append(prior.tolist())
        record["top_prior"] = float(prior.max())
        record["top_posterior"] = float(out["posterior"][int(np.argmax(prior))])
    return record


def current_config(
    model: Model, hp: steps.StepConfig, state: steps.TrainState, static_cfg: np.ndarray | None
) -> np.ndarray:
    """The configuration the current task is evaluated with: argmax prior (lowest on ties)."""
    if static_cfg is not None:
        return static_cfg
    log_prior = steps.make_prior(model, hp).log_prob(state.prior)
    return model.configs[int(np.argmax(np.asarray(log_prior)))]


def configs_of(run: run_state.Run) -> list[np.ndarray]:
    """Each finished task's `[L]` bool configuration."""
    return [run_state.as_bool(c) for c in run.chosen]


def results(
    config: ml_collections.ConfigDict, tasks: Sequence[Task], run: run_state.Run
) -> dict[str, Any]:
    """The results dict of a finished run (fields in the README's results section)."""
    configs = configs_of(run)
    results = loop_utils.base_results(config, tasks, run.records, configs, run.kept)
    results["prior_history"] = run.prior_history
    if config.method == "brute_force":
        results["search"] = run.search
    results["num_parameters"] = consolidate.live_parameter_count(run.shared, run.finished, configs)
    return results
