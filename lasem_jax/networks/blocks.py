"""A task network as a sequence of Flax blocks, and the conv block of the paper's networks."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from lasem_jax.networks import layers

Array = jax.Array
Params = dict[str, Any]


class ConvBlock(nn.Module):
    """`kernel`x`kernel` SAME conv to `channels`, ReLU, (+ residual), max-pool `pool` (1 = none).

    The convolution is `layers.conv2d`, not `nn.Conv`: its CPU path has a hand-written gradient
    that XLA:CPU runs ~100x faster inside `lax.scan`. `kb` = (h_kb, c_kb) and `ts` = (h_ts, c_ts)
    are the DF-CNN sizes of docs/protocol.md §2.4 (None where the paper defines none).
    Parameters: `w` `[k, k, c_in, channels]` (trunc-normal 0.05) and `b` `[channels]` (0.2),
    docs/protocol.md §2.1.
    """

    kernel: int
    channels: int
    pool: int = 1
    kb: tuple[int, int] | None = None
    ts: tuple[int, int] | None = None

    @nn.compact
    def __call__(self, x: Array, residual: Array | None = None) -> Array:
        """`[N, H, W, C]` -> `[N, ceil(H/pool), ceil(W/pool), channels]`.

        `residual` `[N, H, W, channels]`, if given, is added after the ReLU, before pooling.
        """
        shape = (self.kernel, self.kernel, x.shape[-1], self.channels)
        w = self.param("w", nn.initializers.truncated_normal(0.05), shape)
        b = self.param("b", nn.initializers.constant(0.2), (self.channels,))
        z = jax.nn.relu(layers.conv2d(x, w) + b)
        if residual is not None:
            z = z + residual
        return layers.max_pool(z, self.pool)

    def output_shape(self, in_shape: Sequence[int]) -> tuple[int, ...]:
        """Output shape `(H', W', channels)` for an input `(H, W, C)` (SAME pooling rounds up)."""
        h, w = in_shape[:2]
        return math.ceil(h / self.pool), math.ceil(w / self.pool), self.channels


@dataclasses.dataclass(frozen=True)
class BlockNetwork:
    """A LASEM task network: blocks, each transferred or task-specific, then the task's head.

    Every block is a Flax module mapping `[N, ...]` to `[N, ...]` with parameters in the
    `params` collection only (no batch statistics, no dropout inside blocks). The library
    appends the head: flatten, FC hidden layers `fc_hidden` (ReLU), dropout 0.5 on the head's
    input in training, and `num_classes` outputs. Networks hash by value (blocks included), so
    models built on them can be static arguments of `jax.jit`.

    Attributes:
      blocks: the blocks, in order.
      input_shape: shape of one input example, e.g. `(H, W, C)`.
      fc_hidden: hidden sizes of the head.
      skips: identity shortcuts `(i, j)` between `ConvBlock`s: the input of block i, max-pooled
        by the pools of blocks i..j-1, is added to block j's post-ReLU output before its
        pooling (the paper's ResNet, docs/protocol.md §3).
      name: a label for logs.
    """

    blocks: tuple[nn.Module, ...]
    input_shape: tuple[int, ...]
    fc_hidden: tuple[int, ...] = ()
    skips: tuple[tuple[int, int], ...] = ()
    name: str = "blocks"

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", tuple(self.blocks))
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))
        object.__setattr__(self, "fc_hidden", tuple(int(s) for s in self.fc_hidden))
        object.__setattr__(self, "skips", tuple((int(i), int(j)) for i, j in self.skips))
        if not self.blocks:
            raise ValueError("A BlockNetwork needs at least one block.")
        for block in self.blocks:
            if not isinstance(block, nn.Module):
                raise TypeError(f"Blocks must be flax.linen Modules, got {type(block).__name__}.")
        for i, j in self.skips:
            if not 0 <= i < j < len(self.blocks):
                raise ValueError(f"Shortcut {(i, j)} must satisfy 0 <= i < j < {len(self.blocks)}.")
            if not all(isinstance(b, ConvBlock) for b in self.blocks[i : j + 1]):
                raise ValueError(f"Shortcut {(i, j)} must join ConvBlocks only.")

    @property
    def layers(self) -> tuple[nn.Module, ...]:
        """The blocks (the conv layers of the paper's networks)."""
        return self.blocks

    @property
    def num_layers(self) -> int:
        """Number of blocks `L`."""
        return len(self.blocks)

    @property
    def is_conv(self) -> bool:
        """Whether every block is a `ConvBlock` (what TF, DF-CNN and the baselines need)."""
        return all(isinstance(block, ConvBlock) for block in self.blocks)

    @functools.cached_property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        """`L + 1` per-example shapes: the input of every block, then the features."""
        shapes = [self.input_shape]
        for block in self.blocks:
            shapes.append(block_output_shape(block, shapes[-1]))
        return tuple(shapes)

    def in_channels(self, layer: int) -> int:
        """Size of the last axis of block `layer`'s input."""
        return self.shapes[layer][-1]

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """Per-example shape of the last block's output."""
        return self.shapes[-1]

    @property
    def feature_dim(self) -> int:
        """Length `F` of the flattened features fed to the head."""
        return math.prod(self.feature_shape)


def block_output_shape(block: nn.Module, in_shape: Sequence[int]) -> tuple[int, ...]:
    """Per-example output shape of `block` on inputs of per-example shape `in_shape`."""
    if isinstance(block, ConvBlock):
        return block.output_shape(in_shape)
    x = jax.ShapeDtypeStruct((1, *in_shape), jnp.float32)
    out, _ = jax.eval_shape(lambda t: block.init_with_output(jax.random.key(0), t), x)
    return tuple(out.shape[1:])


@functools.partial(jax.jit, static_argnums=(0, 2))
def init_block(block: nn.Module, key: Array, in_shape: tuple[int, ...]) -> Params:
    """Fresh Flax parameters of `block` for per-example inputs of shape `in_shape` (jitted)."""
    return block.init(key, jnp.zeros((1, *in_shape), jnp.float32))["params"]


def apply_block(block: nn.Module, params: Params, x: Array, **kwargs: Any) -> Array:
    """`block` with parameters `params` on `x` `[N, ...]`."""
    return block.apply({"params": params}, x, **kwargs)
