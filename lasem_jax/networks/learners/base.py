"""The interface every base learner implements: how a transferring layer gets its kernel."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from lasem_jax.networks.blocks import ConvBlock

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class Learner:
    """A base learner: the parameterisation of the *transfer* path of each block.

    A non-transferring block is always the plain block with task-specific parameters (spec
    2.5) and is handled by the model. For a `ConvBlock`, a learner defines the shared
    parameters of the layer, the task-specific mapping parameters that turn them into a kernel,
    and a regulariser. Learners are frozen dataclasses, so they hash by value and can be static
    arguments of `jax.jit`.

    Attributes:
      he_init: use He initialisation for plain weights instead of trunc-normal 0.05.
      any_block: whether the transfer path is the block itself with the shared parameters (any
        Flax block), rather than a kernel the learner generates for a `ConvBlock`.
    """

    name: ClassVar[str] = ""
    any_block: ClassVar[bool] = False
    he_init: bool = False

    def init_shared(
        self, rng: np.random.Generator, layer: ConvBlock, c_in: int
    ) -> dict[str, Array]:
        """Shared (transferred) parameters of one layer."""
        raise NotImplementedError

    def init_map(self, rng: np.random.Generator, layer: ConvBlock, c_in: int) -> dict[str, Array]:
        """Task-specific mapping parameters of one layer's transfer path (may be empty)."""
        raise NotImplementedError

    def transfer_kernel(
        self, shared: dict[str, Array], tmap: dict[str, Array], layer: ConvBlock
    ) -> tuple[Array, Array]:
        """Kernel `[k, k, c_in, c_out]` and bias `[c_out]` of the transfer path of one layer."""
        raise NotImplementedError

    def regularizer(self, shared: dict, maps: dict, transfer_prob: Array) -> Array:
        """Penalty added to the M-step objective.

        Args:
          shared: `{"layer_i": shared params}` of every layer.
          maps: `{"layer_i": task mapping params}` of the current task.
          transfer_prob: `[L]` probability that each layer transfers (posterior marginal, or
            the 0/1 configuration of a static network).

        Returns:
          A scalar.
        """
        del shared, maps, transfer_prob
        return jnp.zeros((), jnp.float32)
