"""Task-wise brute-force search (docs/protocol.md §8): train every candidate, keep the best."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Generator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lasem_jax import interrupt
from lasem_jax.core import search_space
from lasem_jax.core.frozen import RunConfig
from lasem_jax.engine import lockstep, steps
from lasem_jax.networks.model import Model
from lasem_jax.training import loop_utils


@dataclasses.dataclass
class SearchResult:
    """The outcome of one task's search.

    Attributes:
      index: the winner's row in `candidates`.
      state: the winner's train state after its last epoch, not its best (docs/protocol.md §8).
      records: the winner's per-epoch records.
      scores: `[C]` each candidate's score (maximum validation accuracy of the new task).
      candidates: `[C, L]` bool configurations tried, in `enumerate_configs` order.
      seconds: wall time of the whole search (every candidate's training and evaluation).
    """

    index: int
    state: Any
    records: list[dict]
    scores: list[float]
    candidates: np.ndarray
    seconds: float

    @property
    def config(self) -> np.ndarray:
        """`[L]` bool configuration of the winner."""
        return self.candidates[self.index]

    def summary(self) -> dict[str, Any]:
        """JSON-ready `{"configs", "scores", "chosen", "seconds"}` for results.json."""
        return {
            "configs": [search_space.config_to_string(c) for c in self.candidates],
            "scores": self.scores,
            "chosen": search_space.config_to_string(self.config),
            "seconds": self.seconds,
        }


def candidates(model: Model, *, search: bool) -> np.ndarray:
    """`[C, L]` configurations to try: all allowed by the model's partition, or one fixed one.

    Args:
      model: the task's model (its `partition` restricts the candidates as in LASEM).
      search: False for a first task that is not searched (`brute_force.search_first_task`):
        as the reference code (docs/protocol.md §8), HPS trains it with every layer
        task-specific (`none`), TF and DF-CNN with every layer transferring (`all`).
    """
    if not search:
        name = "none" if model.learner.name == "hps" else "all"
        return search_space.named_config(name, model.num_layers)[None]
    return model.configs


def score(records: list[dict]) -> float:
    """A candidate's score: the best validation accuracy of the new task over its epochs."""
    return float(max(r["val"][-1] for r in records))


def best_index(scores: list[float]) -> int:
    """The index of the highest score; ties go to the lowest index (strict improvement)."""
    return int(np.argmax(scores))


def search_task(
    config: RunConfig,
    model: Model,
    hp: steps.StepConfig,
    start: tuple[int, int, steps.TrainState],
    data: tuple[jax.Array, jax.Array, int | None],
    evaluate: Callable[[steps.TrainState, np.ndarray], dict],
) -> Generator[lockstep.EpochRequest, lockstep.EpochResult, SearchResult]:
    """Searches one task: every candidate trained from the same start (a `lockstep` generator).

    Candidates train `config.brute_force.batch_candidates` at a time (0: all) as one vmapped
    computation sharded over `config.train.num_devices` devices; a chunk of one goes through
    the caller's driver instead, so runs searched side by side (seeds) batch together.

    Args:
      config: the run's config (`train.epochs_per_task`, `brute_force`, learning rate).
      model: the task's model (its partition restricts the candidates).
      hp: static step hyperparameters.
      start: `(task index, global epoch, train state)` every candidate starts from.
      data: the task's training images `[N, H, W, C]` and labels `[N]` on the device, and its
        own examples `n` if they are padded (`loop_utils.training_data`).
      evaluate: `(state, config) -> {"val": [...], "test": [...]}` of every seen task.

    Returns:
      The `SearchResult` (the generator's return value).
    """
    t, global_epoch, start_state = start
    began = time.time()
    configs = candidates(model, search=t > 0 or bool(config.brute_force.search_first_task))

    def candidate(c: np.ndarray) -> Generator[lockstep.EpochRequest, Any, tuple[Any, list]]:
        state, records = start_state, []
        for e in range(int(config.train.epochs_per_task)):
            lr = loop_utils.learning_rate(config, global_epoch + e)
            x, y, n = data
            request = lockstep.EpochRequest(model, hp, state, x, y, lr, jnp.asarray(c), n)
            state, out = yield request
            loop_utils.check_finite(out["losses"], t, e + 1)
            record = {"task": t, "epoch": e + 1, "global_epoch": global_epoch + e + 1}
            record.update(lr=lr, loss=float(np.mean(out["losses"])))
            record["config"] = search_space.config_to_string(c)
            record["num_devices"] = int(out.get("num_devices", 1))
            records.append({**record, **(yield from evaluate(state, c))})
            interrupt.check(t, 0)  # A search restarts its task on resume.
        return state, records

    chunk = int(config.brute_force.batch_candidates) or len(configs)
    if config.train.shard_batch:  # The devices split each minibatch, not the candidates.
        chunk = 1
    scores: list[float] = []
    best: tuple[Any, list[dict]] = (start_state, [])
    for first in range(0, len(configs), chunk):
        group = [candidate(c) for c in configs[first : first + chunk]]
        if len(group) == 1:  # Through the caller's driver, which may batch it with other runs.
            trained = [(yield from group[0])]
        else:
            devices, cap = int(config.train.num_devices), int(config.train.max_batched_runs)
            trained = lockstep.drive(group, vmap=True, num_devices=devices, max_runs=cap)
        for state, records in trained:  # Keep only the best state so far.
            scores.append(score(records))
            if best_index(scores) == len(scores) - 1:
                best = (state, records)
    return SearchResult(best_index(scores), *best, scores, configs, time.time() - began)
