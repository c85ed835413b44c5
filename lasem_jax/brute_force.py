"""Task-wise brute-force configuration search (spec 8): train every candidate, keep the best."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from lasem_jax import search_space
from lasem_jax.model import Model


@dataclasses.dataclass
class SearchResult:
    """The outcome of one task's search.

    Attributes:
      index: the winner's row in `candidates`.
      state: the winner's train state after its last epoch (not its best epoch, as spec 8).
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
    """`[C, L]` configurations to try: all allowed by the model's partition, or only `all`.

    Args:
      model: the task's model (its `partition` restricts the candidates as in LASEM).
      search: False for a first task that is not searched (`brute_force.search_first_task`).
    """
    if not search:
        return search_space.named_config("all", model.num_layers)[None]
    return model.configs


def search(
    train_candidate: Callable[[np.ndarray], tuple[Any, list[dict]]], configs: np.ndarray
) -> SearchResult:
    """Trains every configuration from the same start and keeps the best.

    Args:
      train_candidate: `config [L] -> (final state, per-epoch records)`; every call must start
        from the same parameters, optimiser state and RNG (the trainer's closure does). Each
        record holds `val`, the validation accuracy of every seen task (the new one last).
      configs: `[C, L]` candidates.

    Returns:
      The `SearchResult`; ties go to the lowest candidate index (strict improvement).
    """
    start = time.time()
    best_index, best_state, best_records = -1, None, []
    scores: list[float] = []
    for i, config in enumerate(configs):
        state, records = train_candidate(config)
        scores.append(float(max(r["val"][-1] for r in records)))
        if best_index < 0 or scores[-1] > scores[best_index]:
            best_index, best_state, best_records = i, state, records
    return SearchResult(
        best_index, best_state, best_records, scores, np.asarray(configs), time.time() - start
    )
