"""A user-defined LASEM network: a 3-block MLP of Flax modules for the digits scenario.

Use it from a launcher with `--config.model.arch=examples.blocks:digits_mlp`, or from Python:
`lasem_jax.register_architecture("digits_mlp", digits_mlp)` then `config.model.arch =
"digits_mlp"`. Each block is transferred (HPS: the block with the shared parameters) or
task-specific (the block with the task's own parameters), as LASEM's EM decides.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax

import lasem_jax


class DenseBlock(nn.Module):
    """Flattens its input and maps it to `features` units with a ReLU: `[N, ...]` -> `[N, D]`."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """`[N, ...]` -> `[N, features]`."""
        return nn.relu(nn.Dense(self.features)(x.reshape(x.shape[0], -1)))


class ResidualBlock(nn.Module):
    """A residual MLP block `relu(x + Dense(relu(Dense(x))))`: `[N, D]` -> `[N, D]`."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """`[N, D]` -> `[N, D]`."""
        h = nn.relu(nn.Dense(x.shape[-1])(x))
        return nn.relu(x + nn.Dense(x.shape[-1])(h))


def digits_mlp(
    *,
    width: float = 1.0,
    input_shape: Sequence[int] | None = None,
    fc_hidden: Sequence[int] | None = None,
) -> lasem_jax.BlockNetwork:
    """A dense block of `64 * width` units and two residual blocks, for 8x8x1 digits by default.

    Args:
      width: multiplier of the 64 units.
      input_shape: one example's shape; None for the digits' `(8, 8, 1)`.
      fc_hidden: the head's hidden sizes; None for none.

    Returns:
      The network (3 blocks, so 8 configurations).
    """
    units = max(1, round(64 * width))
    blocks = [DenseBlock(units), ResidualBlock(), ResidualBlock()]
    shape = (8, 8, 1) if input_shape is None else tuple(input_shape)
    return lasem_jax.BlockNetwork(blocks, shape, tuple(fc_hidden or ()), name="digits_mlp")
