"""End-of-task consolidation (docs/protocol.md §1.8): keep, roll back or discard per layer."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lasem_jax.core import layout
from lasem_jax.networks.model import Model, count_params

Params = dict[str, Any]


def _zeros_like(tree: Any) -> Any:
    return jax.tree_util.tree_map(jnp.zeros_like, tree)


def consolidate(
    shared_before: Params,
    shared_after: Params,
    task: Params,
    config: np.ndarray,
    shared_alive: np.ndarray,
) -> tuple[Params, Params, np.ndarray]:
    """Applies the reference code's end-of-task rules for the chosen configuration.

    For a transferring layer the updated shared parameters are kept and the task's plain conv
    is discarded. For a task-specific layer the shared parameters are rolled back to their
    value before the task (updates received through other configurations are thrown away) and
    the task's mapping parameters are discarded. Discarded tensors are replaced by zeros so
    every task keeps the same pytree structure (one compiled evaluation serves all tasks); the
    configuration guarantees they are never read.

    Args:
      shared_before: `{"layer_i": ...}` shared parameters when the task started.
      shared_after: shared parameters after training the task.
      task: the task's `{"conv", "map", "head"}` parameters.
      config: `[L]` bool chosen configuration (True = transfer).
      shared_alive: `[L]` bool, whether some earlier task transfers each layer.

    Returns:
      `(shared, frozen_task, shared_alive)`: the new shared parameters, the task's stored
      parameters and the updated `[L]` liveness. A layer no task transfers stays dead and is
      re-initialised when the next task starts.
    """
    shared, conv, maps = {}, {}, {}
    for i, transfers in enumerate(np.asarray(config, dtype=bool)):
        name = layout.layer_key(i)
        if transfers:
            shared[name] = shared_after[name]
            conv[name] = _zeros_like(task["conv"][name])
            maps[name] = task["map"][name]
        else:
            shared[name] = shared_before[name]
            conv[name] = task["conv"][name]
            maps[name] = _zeros_like(task["map"][name])
    frozen = {"conv": conv, "map": maps, "head": task["head"]}
    return shared, frozen, np.asarray(shared_alive, bool) | np.asarray(config, bool)


def refresh_dead_layers(
    model: Model, shared: Params, shared_alive: np.ndarray, rng: jax.Array
) -> Params:
    """Re-initialises the shared parameters of layers that no finished task transfers."""
    fresh = model.init_shared(rng)
    return {
        name: shared[name] if alive else fresh[name]
        for name, alive in zip(sorted(shared, key=_layer_index), shared_alive, strict=True)
    }


def _layer_index(name: str) -> int:
    return int(name.split("_")[1])


def live_parameter_count(shared: Params, tasks: list[Params], configs: list[np.ndarray]) -> int:
    """Parameters a lifelong model must store (Appendix E), discarded tensors excluded.

    Args:
      shared: shared parameters of every layer.
      tasks: each finished task's stored parameters.
      configs: each finished task's `[L]` bool configuration.

    Returns:
      Shared parameters of layers some task transfers, plus for every task its plain convs of
      task-specific layers, its mappings of transferring layers and its head.
    """
    alive = np.zeros(len(shared), bool)
    total = 0
    for task, config in zip(tasks, configs, strict=True):
        alive |= config
        for i, transfers in enumerate(config):
            part = task["map"] if transfers else task["conv"]
            total += count_params(part[layout.layer_key(i)])
        total += count_params(task["head"])
    return total + sum(count_params(shared[layout.layer_key(i)]) for i in np.flatnonzero(alive))
