"""The space of transfer configurations: enumeration, layer-group partitions and named configs."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

Partition = Sequence[Sequence[int]]


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def validate_partition(num_layers: int, partition: Partition | None) -> list[list[int]]:
    """Checks that `partition` splits layers `0..num_layers-1` into disjoint groups.

    Args:
      num_layers: number of conv layers `L`.
      partition: groups of 0-based layer indices, or None for one group per layer.

    Returns:
      The partition as a list of sorted lists, in the order given.

    Raises:
      ValueError: the partition is not a list of groups of integers, a group is empty, a layer
        index is out of range, a layer appears twice, or a layer is missing.
    """
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}.")
    if partition is None:
        return [[layer] for layer in range(num_layers)]
    if isinstance(partition, str) or not all(
        isinstance(group, list | tuple) and all(_is_int(layer) for layer in group)
        for group in partition
    ):
        raise ValueError(
            f"Partition {partition!r} must be a list of groups of 0-based layer indices, e.g. "
            "((0, 1), (2, 3)) (on the command line: --config.model.partition='((0,1),(2,3))')."
        )
    groups = [sorted(int(layer) for layer in group) for group in partition]
    seen: dict[int, int] = {}
    for g, group in enumerate(groups):
        if not group:
            raise ValueError(f"Partition group {g} is empty; remove it or give it layers.")
        for layer in group:
            if not 0 <= layer < num_layers:
                raise ValueError(
                    f"Partition group {g} names layer {layer}, but the network has layers "
                    f"0..{num_layers - 1}; use 0-based layer indices."
                )
            if layer in seen:
                raise ValueError(
                    f"Partition groups {seen[layer]} and {g} overlap at layer {layer}; "
                    "each layer must belong to exactly one group."
                )
            seen[layer] = g
    missing = sorted(set(range(num_layers)) - set(seen))
    if missing:
        raise ValueError(
            f"Partition does not cover layers {missing} of 0..{num_layers - 1}; "
            "add them to a group (a group of one layer is allowed)."
        )
    return groups


def layer_to_group(num_layers: int, partition: Partition | None) -> np.ndarray:
    """Returns `[L]` int: the index of the partition group holding each layer."""
    groups = validate_partition(num_layers, partition)
    owner = np.empty(num_layers, dtype=np.int32)
    for g, group in enumerate(groups):
        owner[group] = g
    return owner


def enumerate_configs(num_layers: int, partition: Partition | None = None) -> np.ndarray:
    """Enumerates every transfer configuration allowed by the partition.

    Row order follows the reference code (docs/protocol.md §1.1): configuration `i` has group `g`
    transferring iff bit `g` of `i` is 0. Row 0 transfers everything, the last row nothing; for
    4 single-layer groups the rows are TTTT, FTTT, TFTT, FFTT, TTFT, ... (layer 0 first).

    Args:
      num_layers: number of conv layers `L`.
      partition: disjoint groups of 0-based layer indices covering `0..L-1`; a configuration is
        one bit per group. None means one group per layer.

    Returns:
      `[C, L]` bool, True where the layer transfers; `C = 2**len(partition)` (or `2**L`).
    """
    owner = layer_to_group(num_layers, partition)
    num_groups = int(owner.max()) + 1
    index = np.arange(2**num_groups)[:, None]
    group_transfers = ((index >> np.arange(num_groups)[None, :]) & 1) == 0
    return group_transfers[:, owner]


_NAMED = re.compile(r"^(top|bottom)(\d+)$")


def named_config(name: str, num_layers: int) -> np.ndarray:
    """Returns one of the paper's static configurations (Section 2, docs/protocol.md §7).

    Names: `all`, `none`, `top<k>` (the k output-side layers transfer), `bottom<k>` (the k
    input-side layers transfer), `alternating` (input side first: task-specific, transfer, ...,
    i.e. layers {2, 4} of 4 in the paper's 1-based notation), `alternating_even` (the other
    phase), or an explicit bit string such as `"0101"` (input-side layer first, 1 = transfer).

    Args:
      name: the configuration name.
      num_layers: number of conv layers `L`.

    Returns:
      `[L]` bool, True where the layer transfers.

    Raises:
      ValueError: unknown name, k outside 1..L, or a bit string of the wrong length.
    """
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}.")
    layers = np.arange(num_layers)
    if name == "all":
        return np.ones(num_layers, dtype=bool)
    if name == "none":
        return np.zeros(num_layers, dtype=bool)
    if name == "alternating":
        return layers % 2 == 1
    if name == "alternating_even":
        return layers % 2 == 0
    match = _NAMED.match(name)
    if match:
        side, k = match.group(1), int(match.group(2))
        if not 1 <= k <= num_layers or match.group(2) != str(k):
            raise ValueError(
                f"Configuration {name!r}: k={k} is out of range for {num_layers} layers; "
                f"use {side}1 .. {side}{num_layers}."
            )
        return layers >= num_layers - k if side == "top" else layers < k
    if name and set(name) <= {"0", "1"}:
        if len(name) != num_layers:
            raise ValueError(
                f"Bit-string configuration {name!r} has {len(name)} bits but the network has "
                f"{num_layers} layers; give one bit per layer, input side first."
            )
        return np.array([bit == "1" for bit in name])
    raise ValueError(
        f"Unknown configuration name {name!r}. Use all, none, top<k>, bottom<k>, alternating, "
        "alternating_even or a bit string such as '0101' (1 = transfer, input side first)."
    )


def config_index(configs: np.ndarray, config: np.ndarray) -> int:
    """Returns the row of `configs` `[C, L]` equal to `config` `[L]`; ValueError if absent."""
    if np.shape(config) != configs.shape[1:]:
        raise ValueError(
            f"Configuration has {np.size(config)} entries but the network has "
            f"{configs.shape[1]} layers; give one entry per layer."
        )
    matches = np.flatnonzero((configs == np.asarray(config, dtype=bool)[None]).all(axis=1))
    if matches.size == 0:
        bits = "".join("1" if b else "0" for b in config)
        raise ValueError(
            f"Configuration {bits} is not in the search space (it is not constant within "
            "the partition's groups); choose one that is, or change the partition."
        )
    return int(matches[0])


def config_to_string(config: np.ndarray) -> str:
    """Formats `[L]` bool as a bit string, input side first (1 = transfer)."""
    return "".join("1" if bool(b) else "0" for b in config)
