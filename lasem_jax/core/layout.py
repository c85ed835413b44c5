"""The parameter layout every network and method shares: the key of each conv layer."""

from __future__ import annotations


def layer_key(i: int) -> str:
    """The key of conv layer `i` (0-based) in every parameter tree: `layer_0`, `layer_1`, ...

    A LASEM-family model's parameters are `{"shared": {key: ...}, "task": {"conv": {key:
    ...}, ...}}` (`networks.model.Model`); the competing methods key their conv layers the same
    way. Saved models and checkpoints hold these keys, so they are part of the file formats.
    """
    return f"layer_{i}"
