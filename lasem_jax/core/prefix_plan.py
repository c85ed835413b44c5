"""Static plan for evaluating all configurations at once by sharing activations of common prefixes.

At the input of layer l only the distinct *prefixes* of the configurations exist (the choices
of the groups decided so far). A layer that is the first of its group branches every prefix
into a transfer and a task-specific child; a later layer of an already decided group splits the
prefixes by their choice and convolves each half with its own kernel. Every convolution stays a
plain one over a batch of activations: vmapping the network over per-configuration kernels
instead turns them into grouped convolutions, ~600x slower on CPU (README.md, section
Performance).
"""

from __future__ import annotations

import dataclasses

import numpy as np

UNDECIDED = -1


@dataclasses.dataclass(frozen=True)
class LayerStep:
    """What happens at one layer.

    Attributes:
      branch: True if every prefix is convolved with both kernels (transfer children first).
      transfer_idx: prefixes taking the transfer path when `branch` is False.
      specific_idx: prefixes taking the task-specific path when `branch` is False.
    """

    branch: bool
    transfer_idx: np.ndarray
    specific_idx: np.ndarray


@dataclasses.dataclass(frozen=True)
class PrefixPlan:
    """The per-layer steps, shortcut ancestry and the final order of configurations.

    Attributes:
      steps: one `LayerStep` per layer.
      prefixes: `prefixes[l]` `[P_l, G]` the prefixes at the input of layer l (`prefixes[L]`
        after the last layer); entries 1 transfer, 0 task-specific, -1 undecided.
      config_rows: `[C]` index of each configuration's final prefix.
    """

    steps: tuple[LayerStep, ...]
    prefixes: tuple[np.ndarray, ...]
    config_rows: np.ndarray

    def ancestors(self, src_layer: int, dst_layer: int) -> np.ndarray:
        """`[P]`: for each prefix after layer `dst_layer`, its ancestor at `src_layer`'s input."""
        src, dst = self.prefixes[src_layer], self.prefixes[dst_layer + 1]
        decided = np.flatnonzero(src[0] != UNDECIDED) if len(src) else np.zeros(0, int)
        lookup = {tuple(row[decided]): i for i, row in enumerate(src)}
        return np.array([lookup[tuple(row[decided])] for row in dst], dtype=np.int32)


def make_plan(configs: np.ndarray, owner: np.ndarray) -> PrefixPlan:
    """Builds the prefix plan.

    Args:
      configs: `[C, L]` bool configurations (constant within each group).
      owner: `[L]` group index of each layer.

    Returns:
      The plan; `config_rows[c]` is the row of the final activations holding configuration c.
    """
    num_layers = owner.shape[0]
    num_groups = int(owner.max()) + 1
    current = np.full((1, num_groups), UNDECIDED, dtype=np.int8)
    prefixes, steps = [current], []
    empty = np.zeros(0, dtype=np.int32)
    for layer in range(num_layers):
        g = owner[layer]
        if current[0, g] == UNDECIDED:
            transfer, specific = current.copy(), current.copy()
            transfer[:, g], specific[:, g] = 1, 0
            steps.append(LayerStep(True, empty, empty))
            current = np.concatenate([transfer, specific])
        else:
            t_idx = np.flatnonzero(current[:, g] == 1).astype(np.int32)
            s_idx = np.flatnonzero(current[:, g] == 0).astype(np.int32)
            steps.append(LayerStep(False, t_idx, s_idx))
            current = np.concatenate([current[t_idx], current[s_idx]])
        prefixes.append(current)
    first_layer = np.array([np.flatnonzero(owner == g)[0] for g in range(num_groups)])
    lookup = {tuple(row): i for i, row in enumerate(current)}
    rows = [lookup[tuple(config[first_layer].astype(np.int8))] for config in configs]
    return PrefixPlan(tuple(steps), tuple(prefixes), np.array(rows, dtype=np.int32))


def layer_evaluations(plan: PrefixPlan) -> np.ndarray:
    """`[L]` number of prefix activations each layer computes (2P on a branch, P otherwise)."""
    return np.array(
        [
            2 * len(p) if s.branch else len(p)
            for s, p in zip(plan.steps, plan.prefixes, strict=False)
        ]
    )
