"""DF-CNN: kernels from a shared tensor by a per-task deconvolution (docs/protocol.md §2.4)."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from lasem_jax.networks import layers
from lasem_jax.networks.blocks import ConvBlock
from lasem_jax.networks.learners.base import Array, Learner

_STRIDE = 2


def _sizes(layer: ConvBlock) -> tuple[int, int, int, int]:
    if layer.kb is None or layer.ts is None:
        raise ValueError(
            "DF-CNN sizes (knowledge-base and task-specific shapes) are not defined for this "
            "architecture (the paper defines none for the 17-layer ResNet); use hps or tf."
        )
    (h_kb, c_kb), (h_ts, c_ts) = layer.kb, layer.ts
    if (h_kb - 1) * _STRIDE + 1 != layer.kernel:
        raise ValueError(
            f"DF-CNN needs kernel = (h_kb - 1) * 2 + 1, got kernel {layer.kernel} and h_kb {h_kb}."
        )
    return h_kb, c_kb, h_ts, c_ts


@dataclasses.dataclass(frozen=True)
class DFCNN(Learner):
    """Deconvolutional factorised CNN (Lee et al., IJCAI 2019) as in the reference code.

    `P = conv2d_transpose(K, D, [1, k, k, c_ts], stride 2, SAME) + d` (no activation),
    `W = tensordot(P, T)` `[k, k, c_in, c_out]`, plus a task-specific conv bias.

    Attributes:
      kb_l2: weight of `||K||^2 / 2` on every layer's shared tensor.
      ts_l2: weight of `||.||^2 / 2` on each task mapping tensor D, d and T (not the bias).
        The reference code applies these penalties a second time to the penalty values
        (docs/protocol.md §2.4, §11.9), which makes them numerically ~0; we use the plain L2 form.
    """

    name = "dfcnn"
    kb_l2: float = 1e-7
    ts_l2: float = 1e-7

    def init_shared(
        self, rng: np.random.Generator, layer: ConvBlock, c_in: int
    ) -> dict[str, Array]:
        """Knowledge base `[1, h_kb, h_kb, c_kb]`, Glorot uniform."""
        h_kb, c_kb, _, _ = _sizes(layer)
        return {"kb": layers.glorot_uniform(rng, (1, h_kb, h_kb, c_kb))}

    def init_map(self, rng: np.random.Generator, layer: ConvBlock, c_in: int) -> dict[str, Array]:
        """Deconv filter `[h_ts,h_ts,c_ts,c_kb]`, its bias `[1,1,1,c_ts]`, tensor, conv bias."""
        _, c_kb, h_ts, c_ts = _sizes(layer)
        shapes = {
            "deconv_w": (h_ts, h_ts, c_ts, c_kb),
            "deconv_b": (1, 1, 1, c_ts),
            "tensor": (c_ts, c_in, layer.channels),
            "b": (layer.channels,),
        }
        return {n: layers.glorot_uniform(rng, s) for n, s in shapes.items()}

    def transfer_kernel(
        self, shared: dict[str, Array], tmap: dict[str, Array], layer: ConvBlock
    ) -> tuple[Array, Array]:
        """Kernel generated from the knowledge base, and the task-specific conv bias."""
        p = layers.conv2d_transpose_same(shared["kb"], tmap["deconv_w"], layer.kernel)
        p = (p + tmap["deconv_b"])[0]
        return jnp.tensordot(p, tmap["tensor"], axes=1), tmap["b"]

    def regularizer(self, shared: dict, maps: dict, transfer_prob: Array) -> Array:
        """Plain L2 on every shared tensor and every task mapping tensor (not weighted by c)."""
        del transfer_prob
        kb = sum(jnp.sum(s["kb"] ** 2) for s in shared.values())
        ts = sum(
            jnp.sum(m[n] ** 2) for m in maps.values() for n in ("deconv_w", "deconv_b", "tensor")
        )
        return 0.5 * (self.kb_l2 * kb + self.ts_l2 * ts)
