"""Tensor factorisation: a shared full-size core, per-task factors (docs/protocol.md §2.3)."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from lasem_jax.core import layout
from lasem_jax.networks import layers
from lasem_jax.networks.blocks import ConvBlock
from lasem_jax.networks.learners.base import Array, Learner

_FACTORS = ("u1", "u2", "u3", "u4")


@dataclasses.dataclass(frozen=True)
class TensorFactorization(Learner):
    """Full-rank Tucker form with a shared core, as in the reference code (not Bulat et al.).

    `W[a',b',c',d'] = sum G[a,b,c,d] U1[a,a'] U2[b,b'] U3[c,c'] U4[d,d']`, plus a task-specific
    bias. The factors are square, so there is no compression (docs/protocol.md §11.10).

    Attributes:
      ortho_weight: weight of the orthogonality penalty `sum_k ||U_k^T U_k - I||_F` (Frobenius
        norm, not squared, as in the reference code), applied per layer in proportion to the
        probability that the layer transfers.
    """

    name = "tf"
    ortho_weight: float = 0.1

    def init_shared(
        self, rng: np.random.Generator, layer: ConvBlock, c_in: int
    ) -> dict[str, Array]:
        """Core `[k, k, c_in, c_out]`, Glorot uniform."""
        shape = (layer.kernel, layer.kernel, c_in, layer.channels)
        return {"core": layers.glorot_uniform(rng, shape)}

    def init_map(self, rng: np.random.Generator, layer: ConvBlock, c_in: int) -> dict[str, Array]:
        """Square factors U1, U2 `[k,k]`, U3 `[c_in,c_in]`, U4 `[c_out,c_out]`, bias `[c_out]`."""
        k, c_out = layer.kernel, layer.channels
        shapes = {"u1": (k, k), "u2": (k, k), "u3": (c_in, c_in), "u4": (c_out, c_out)}
        shapes["b"] = (c_out,)
        return {n: layers.glorot_uniform(rng, s) for n, s in shapes.items()}

    def transfer_kernel(
        self, shared: dict[str, Array], tmap: dict[str, Array], layer: ConvBlock
    ) -> tuple[Array, Array]:
        """The core contracted with the four factors, and the task-specific bias."""
        del layer
        w = jnp.einsum("abcd,aA,bB,cC,dD->ABCD", shared["core"], *(tmap[f] for f in _FACTORS))
        return w, tmap["b"]

    def regularizer(self, shared: dict, maps: dict, transfer_prob: Array) -> Array:
        """`ortho_weight * sum_l transfer_prob[l] * sum_k ||U_lk^T U_lk - I||_F`.

        A 1e-12 inside the square root keeps the gradient finite at exact orthogonality.
        """
        del shared
        total = jnp.zeros((), jnp.float32)
        for i in range(transfer_prob.shape[0]):
            tmap = maps[layout.layer_key(i)]
            for f in _FACTORS:
                u = tmap[f]
                gram = u.T @ u - jnp.eye(u.shape[1], dtype=u.dtype)
                total += transfer_prob[i] * jnp.sqrt(jnp.sum(gram**2) + 1e-12)
        return self.ortho_weight * total
