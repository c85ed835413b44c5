"""What a LASEM-family run records: per-epoch records, evaluations, the kept rows, results."""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable, Generator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lasem_jax.config import run_config
from lasem_jax.core import search_space
from lasem_jax.core.frozen import RunConfig
from lasem_jax.engine import evaluation, steps
from lasem_jax.networks import consolidate
from lasem_jax.networks.model import Model
from lasem_jax.task import Task
from lasem_jax.training import loop_utils, run_state


def eval_request(
    evaluator: evaluation.Evaluator,
    run: run_state.Run,
    state: steps.TrainState,
    current: np.ndarray | jax.Array,
    *,
    everything: bool = True,
) -> evaluation.EvalRequest:
    """The evaluation of every seen task, the current one with `current` (see `evaluate`).

    `current` may be a device array still being computed (`device_config`): nothing waits.
    """
    t = len(run.finished)
    params = [*run.finished, state.params["task"]]
    which = range(t + 1) if everything else [t]
    above = None if everything else {t: _best_validation(run.records, t)}
    return evaluator.request(
        state.params["shared"], params, [*run.chosen, current], which, test_above=above
    )


def accuracy_lists(acc: np.ndarray, seen: int) -> dict[str, list[float | None]]:
    """`{"val": [...], "test": [...]}` of the first `seen` tasks of accuracies `[T, 2]`."""
    return {
        split: [None if np.isnan(a) else float(a) for a in acc[:seen, j]]
        for j, split in enumerate(evaluation.SPLITS)
    }


def evaluate(
    evaluator: evaluation.Evaluator,
    run: run_state.Run,
    state: steps.TrainState,
    current: np.ndarray,
    *,
    everything: bool = True,
) -> Generator[evaluation.EvalRequest, Callable[[], np.ndarray], dict[str, list[float | None]]]:
    """Validation and test accuracy of every seen task, the current one with `current`.

    A generator (`yield from` it in a `lockstep` run): it yields its `EvalRequest`, which the
    driver evaluates alone or in one call with other runs' (sending back a function that reads
    the accuracies), and returns the accuracies.

    All tasks use the current shared parameters. With `everything=False`
    (`train.eval_every_epochs`) only the current task is evaluated, the others' entries are
    None, and so is its test accuracy unless its validation accuracy beats every earlier
    epoch of the task: the peak accuracy reads the test accuracy of those epochs alone.
    """
    read = yield eval_request(evaluator, run, state, current, everything=everything)
    return accuracy_lists(read(), len(run.finished) + 1)


def _best_validation(records: Sequence[dict], task: int) -> float:
    """The best validation accuracy of `task` in its epochs, the last records (`-inf`: none)."""
    window = itertools.takewhile(lambda r: r["task"] == task, reversed(records))
    return max((r["val"][task] for r in window), default=-np.inf)


def kept_row(evaluator: evaluation.Evaluator, run: run_state.Run) -> list[float]:
    """Test accuracy of every finished task with the consolidated (kept) parameters."""
    done = len(run.finished)
    acc = evaluator.accuracies(run.shared, run.finished, run.chosen, range(done))
    return [float(a) for a in acc[:done, 1]]


def epoch_record(
    run: run_state.Run,
    model: Model,
    hp: steps.StepConfig,
    out: dict,
    current: np.ndarray,
    lr: float,
    phase: str | None = None,
) -> dict[str, Any]:
    """The metrics record of the epoch just trained (accuracies are added by the caller).

    LASEM records add the prior after the epoch `[C]` (also appended to `run.prior_history`;
    a resumed run rebuilds that from the records) and its top probability, the epoch's phase
    (`epoch_step`) and, but in fine-tuning epochs, the epoch's mean posterior `[C]` and its
    entry at the top prior.
    """
    record = {"task": run.task, "epoch": run.epoch, "global_epoch": run.global_epoch, "lr": lr}
    record["loss"] = float(np.mean(out["losses"]))
    record["num_devices"] = int(out.get("num_devices", 1))
    record["config"] = search_space.config_to_string(current)
    if hp.method == "lasem":
        prior = np.exp(np.asarray(steps.make_prior(model, hp).log_prob(run.state.prior)))
        record["prior"] = prior.tolist()
        run.prior_history[run.task].append(record["prior"])
        record["top_prior"] = float(prior.max())
        record["phase"] = phase
        if phase != "finetune":  # Fine-tuning trains one network: there is no posterior.
            post = np.asarray(out["posterior"])
            record["top_posterior"] = float(post[int(np.argmax(prior))])
            record["posterior"] = [round(float(p), 6) for p in post]
    return record


def epoch_step(
    config: RunConfig,
    model: Model,
    hp: steps.StepConfig,
    state: steps.TrainState,
    run_cfg: jax.Array,
    epoch: int,
) -> tuple[steps.StepConfig, jax.Array, str | None]:
    """The step and configuration that train a task's 0-based `epoch`, and LASEM's phase.

    LASEM's phase (`run_config.lasem_phase`): `warmup` trains every configuration equally
    (`StepConfig.warmup`), `finetune` trains only the argmax-prior configuration with the
    static step (the prior stays as it is), `em` is the EM step. Other methods: `(hp, run_cfg,
    None)`.
    """
    if hp.method != "lasem":
        return hp, run_cfg, None
    phase = run_config.lasem_phase(config, epoch)
    if phase == "warmup":
        return dataclasses.replace(hp, warmup=True), run_cfg, phase
    if phase == "finetune":
        chosen = device_config(model, hp, state)
        return dataclasses.replace(hp, method="static"), chosen, phase
    return hp, run_cfg, phase


def current_config(
    model: Model, hp: steps.StepConfig, state: steps.TrainState, static_cfg: np.ndarray | None
) -> np.ndarray:
    """The configuration the current task is evaluated with: argmax prior (lowest on ties)."""
    if static_cfg is not None:
        return static_cfg
    return np.asarray(device_config(model, hp, state))


@functools.partial(jax.jit, static_argnums=(0, 1))
def device_config(model: Model, hp: steps.StepConfig, state: steps.TrainState) -> jax.Array:
    """`current_config` of a LASEM state computed on the device (nothing waits for it)."""
    log_prior = steps.make_prior(model, hp).log_prob(state.prior)
    return jnp.asarray(model.configs)[jnp.argmax(log_prior)]


def configs_of(run: run_state.Run) -> list[np.ndarray]:
    """Each finished task's `[L]` bool configuration."""
    return [run_state.as_bool(c) for c in run.chosen]


def results(config: RunConfig, tasks: Sequence[Task], run: run_state.Run) -> dict[str, Any]:
    """The results dict of a finished run (fields in the README's results section)."""
    configs = configs_of(run)
    results = loop_utils.base_results(config, tasks, run.records, configs, run.kept, run.start)
    results["prior_history"] = run.prior_history
    results["num_devices"] = max(int(r.get("num_devices", 1)) for r in run.records)
    if config.method == "brute_force":
        results["search"] = run.search
    results["num_parameters"] = consolidate.live_parameter_count(run.shared, run.finished, configs)
    return results
