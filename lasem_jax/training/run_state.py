"""Everything a lifelong run carries between epochs, and its split into checkpoint arrays + JSON."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from lasem_jax.engine import steps
from lasem_jax.errors import LoadError
from lasem_jax.networks.model import Model
from lasem_jax.storage import checkpoint, tree_io


@dataclasses.dataclass
class Run:
    """The state of a lifelong run after some epoch.

    Attributes:
      rng: the key the next task's keys are split from.
      shared: shared parameters at the start of the current task (the rollback point); between
        tasks, the consolidated shared parameters.
      finished: the stored parameters of each finished task.
      chosen: each finished task's `[L]` configuration.
      alive: `[L]`, whether some finished task transfers each layer.
      task: index of the current task.
      epoch: epochs done in the current task (0: not started, `state` is None).
      global_epoch: epochs done in the whole run (drives the learning-rate decay).
      records: one metrics record per epoch so far (also appended to `metrics.jsonl`, where a
        checkpoint finds them; LASEM records hold the epoch's `prior`).
      prior_history: per started task, the prior after each of its epochs (LASEM).
      search: per searched task, the brute-force candidates, scores, winner and seconds.
      kept: per finished task i, the test accuracy of tasks 0..i with the consolidated
        parameters (row i of the kept model's accuracy matrix).
      start: per started task i, None (task 0, or a checkpoint written before these were
        kept) or `[before, at_init]`: its test accuracy at its start, before training, with the
        parameters kept after task i-1 and with the run's initial shared parameters, both with
        task i's fresh task parameters (`metrics.forward_transfer`).
      elapsed: seconds spent training before this process.
      state: the current task's train state, or None between tasks.
    """

    rng: jax.Array
    shared: dict
    finished: list[dict]
    chosen: list[list[bool]]
    alive: list[bool]
    task: int = 0
    epoch: int = 0
    global_epoch: int = 0
    records: list[dict] = dataclasses.field(default_factory=list)
    prior_history: list[list] = dataclasses.field(default_factory=list)
    search: list[dict] = dataclasses.field(default_factory=list)
    kept: list[list[float]] = dataclasses.field(default_factory=list)
    start: list[list[float] | None] = dataclasses.field(default_factory=list)
    elapsed: float = 0.0
    state: steps.TrainState | None = None


_META_FIELDS = ("chosen", "alive", "task", "epoch", "global_epoch", "search", "kept")
_GROWING = ("records", "prior_history")
"""Run fields that grow with the epochs, which checkpoints held before `num_records`."""


def to_checkpoint(run: Run, config_json: dict, elapsed: float) -> tuple[dict, dict]:
    """Splits a mid-task run into orbax arrays and JSON metadata.

    The metadata's size does not grow with the epochs: it holds the number of records
    (`num_records`), not the records, which the run appends to `metrics.jsonl`; the prior
    history is rebuilt from their `prior` (`from_checkpoint`).

    Args:
      run: a run whose current task has started (`run.state` is set).
      config_json: the run's config as JSON, stored to refuse resuming another config.
      elapsed: total seconds trained so far.

    Returns:
      `(arrays, meta)`.
    """
    arrays = {"rng": run.rng, "shared": run.shared, "finished": run.finished, "state": run.state}
    meta = {name: getattr(run, name) for name in _META_FIELDS}
    meta.update(start=run.start, num_records=len(run.records), elapsed=elapsed, config=config_json)
    return arrays, meta


def check_checkpoint(
    models: Sequence[Model], hp: steps.StepConfig, epochs: int, arrays: Any, meta: dict
) -> None:
    """Raises `LoadError` unless a checkpoint holds what `to_checkpoint` writes for this run.

    Its progress fields must be in range, and its arrays must have the structure, shapes and
    dtypes that fresh parameters and a fresh train state of the run's models have.

    Args:
      models: the run's model per task.
      hp: the run's step configuration.
      epochs: `config.train.epochs_per_task`.
      arrays: the checkpoint's tree.
      meta: its JSON metadata.
    """
    growing = _GROWING if "records" in meta else ("num_records",)
    missing = [name for name in (*_META_FIELDS, "elapsed", *growing) if name not in meta]
    if missing:
        raise LoadError(f"the checkpoint has no {missing} (written by an older lasem_jax?).")
    checkpoint.check_progress(meta, num_tasks=len(models), epochs=epochs)
    task, num_layers = meta["task"], models[0].num_layers
    if "records" in meta:
        _check_prior_history(meta, task)
    check_start(meta, task)
    chosen, alive = meta["chosen"], meta["alive"]
    rows = [*chosen, alive] if isinstance(chosen, list) and len(chosen) == task else [None]
    if not all(isinstance(r, list) and len(r) == num_layers for r in rows) or not all(
        isinstance(b, bool) for r in rows for b in r
    ):
        raise LoadError(
            f"checkpoint fields 'chosen' and 'alive' must be {task} and 1 lists of {num_layers} "
            "bools."
        )
    key = jax.random.PRNGKey(0)
    shared, model = models[0].init_shared(key), models[task]
    params = {"shared": shared, "task": model.init_task(key)}
    expected = {
        "rng": key,
        "shared": shared,
        "finished": [models[k].init_task(key) for k in range(task)],
        "state": steps.init_state(model, hp, params, key, 1.0),
    }
    tree_io.check_like(arrays, expected, "the checkpoint's arrays")


def check_start(meta: dict, task: int) -> None:
    """Raises `LoadError` unless a checkpoint's optional `start` fits `Run.start` at `task`."""
    if "start" not in meta:
        return
    start = meta["start"]

    def number(v: Any) -> bool:
        return v is None or (isinstance(v, int | float) and not isinstance(v, bool))

    if (
        not isinstance(start, list)
        or len(start) != task + 1
        or not all(
            p is None or (isinstance(p, list) and len(p) == 2 and all(map(number, p)))
            for p in start
        )
    ):
        raise LoadError(
            f"checkpoint field 'start' must be {task + 1} entries, each null or [before, at_init]."
        )


def _check_prior_history(meta: dict, task: int) -> None:
    """Raises `LoadError` unless a checkpoint holding its records has their prior history."""
    history, tasks = meta.get("prior_history"), [r.get("task") for r in meta["records"]]
    fits = isinstance(history, list) and len(history) == task + 1
    if not fits or not all(
        isinstance(h, list) and len(h) in (0, tasks.count(t)) for t, h in enumerate(history)
    ):
        raise LoadError(
            f"checkpoint field 'prior_history' is not {task + 1} lists of priors, one per record "
            "of their task or none."
        )


def from_checkpoint(arrays: dict, meta: dict, records: list[dict]) -> Run:
    """Rebuilds the run saved by `to_checkpoint` (checked by `check_checkpoint`).

    The prior history is rebuilt from the records' `prior`. A checkpoint written before the
    records left it holds them without their priors, and the history beside them: the priors
    are put back into the records (which resume writes to `metrics.jsonl`, where later
    checkpoints find them).

    Args:
      arrays: the checkpoint's arrays.
      meta: its JSON metadata.
      records: the run's records so far (`checkpoint.saved_records`).
    """
    fields = {name: meta[name] for name in _META_FIELDS}
    if "records" in meta:  # Per task, no priors or one per record (`check_checkpoint`).
        for t, priors in enumerate(meta["prior_history"]):
            mine = [r for r in records if r.get("task") == t] if priors else []
            for record, prior in zip(mine, priors, strict=True):
                record["prior"] = prior
    history = [
        [r["prior"] for r in records if r.get("task") == t and "prior" in r]
        for t in range(meta["task"] + 1)
    ]
    return Run(
        rng=arrays["rng"],
        shared=arrays["shared"],
        finished=list(arrays["finished"]),
        state=arrays["state"],
        elapsed=float(meta["elapsed"]),
        records=records,
        prior_history=history,
        start=list(meta.get("start", [None] * (meta["task"] + 1))),
        **fields,
    )


def as_bool(values: Any) -> np.ndarray:
    """A JSON list of bools (or an array) as a bool array."""
    return np.asarray(values, dtype=bool)
