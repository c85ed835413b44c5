"""Hard parameter sharing: transfer uses the shared kernel and bias (docs/protocol.md §2.2)."""

from __future__ import annotations

import dataclasses

import numpy as np

from lasem_jax.networks import layers
from lasem_jax.networks.blocks import ConvBlock
from lasem_jax.networks.learners.base import Array, Learner


@dataclasses.dataclass(frozen=True)
class HPS(Learner):
    """Hard parameter sharing; the bias is shared too, as the reference (docs/protocol.md §11.11).

    On any other Flax block the transfer path is the block with the shared parameters, which
    the model initialises with the block's own (Flax) initialisers.
    """

    name = "hps"
    any_block = True

    def init_shared(
        self, rng: np.random.Generator, layer: ConvBlock, c_in: int
    ) -> dict[str, Array]:
        """Shared kernel `[k, k, c_in, c_out]` (trunc-normal 0.05) and bias `[c_out]` (0.2)."""
        return layers.init_conv(rng, layer.kernel, c_in, layer.channels, he=self.he_init)

    def init_map(self, rng: np.random.Generator, layer: ConvBlock, c_in: int) -> dict[str, Array]:
        """HPS has no task-specific mapping."""
        del rng, layer, c_in
        return {}

    def transfer_kernel(
        self, shared: dict[str, Array], tmap: dict[str, Array], layer: ConvBlock
    ) -> tuple[Array, Array]:
        """The shared kernel and bias themselves."""
        del tmap, layer
        return shared["w"], shared["b"]
