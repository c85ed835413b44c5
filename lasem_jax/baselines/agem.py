"""A-GEM: gradients projected against a memory's reference gradient (Chaudhry et al. 2019)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from lasem_jax.baselines import base, replay
from lasem_jax.baselines.er import ER, masked_cross_entropy
from lasem_jax.core.frozen import RunConfig
from lasem_jax.task import Task


def project(g: base.Params, g_ref: base.Params) -> base.Params:
    """A-GEM's Eq. 11: `g - (g.g_ref / g_ref.g_ref) g_ref` if `g.g_ref < 0`, else `g`."""
    dot = sum(
        jnp.vdot(a, b) for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_ref), strict=True)
    )
    ref_sq = sum(jnp.vdot(b, b) for b in jax.tree.leaves(g_ref))
    scale = jnp.where(dot < 0, dot / jnp.maximum(ref_sq, 1e-30), 0.0)
    return jax.tree.map(lambda a, b: a - scale * b, g, g_ref)


class AGEM(ER):
    """A-GEM (Chaudhry et al. 2019, ICLR, "Efficient Lifelong Learning with A-GEM", Eq. 10-11).

    Each step computes the gradient g of the current minibatch's cross-entropy and the reference
    gradient g_ref of the cross-entropy of `agem.sample_size` examples drawn from the memory's
    earlier tasks (each through its own head); the update uses g projected so that it does not
    increase the reference loss, `g~ = g - (g^T g_ref / g_ref^T g_ref) g_ref` when `g^T g_ref < 0`
    (Eq. 11), else g. The memory (`agem.buffer_size` examples) is filled by reservoir sampling
    over the stream of training examples (the paper keeps a fixed number per task; reservoir
    sampling keeps about as many, without knowing the number of tasks).
    """

    name = "agem"

    def __init__(self, config: RunConfig, tasks: list[Task]) -> None:
        super().__init__(config, tasks)
        self.sample_size = int(self.section().sample_size)

    def step(
        self, t: int, params: base.Params, opt_state: Any, extra: dict, batch: tuple, rng: jax.Array
    ) -> tuple[base.Params, Any, dict, jax.Array]:
        """One projected step on the current minibatch, then the reservoir update."""
        x, y = batch
        drop, draw, offer = jax.random.split(rng, 3)
        buffer = extra["buffer"]
        (loss, _), grads = jax.value_and_grad(self.loss, argnums=1, has_aux=True)(
            t, params, extra, x, y, drop
        )
        idx, valid = replay.sample(buffer, draw, self.sample_size, buffer["task"] < t)

        def ref_loss(p: base.Params) -> jax.Array:
            logits = self.own_logits(p, buffer["x"][idx], buffer["task"][idx], drop)
            ce = masked_cross_entropy(logits, buffer["y"][idx], valid)
            return ce.sum() / jnp.maximum(valid.sum(), 1)

        grads = project(grads, jax.grad(ref_loss)(params))
        params, opt_state = self.apply(params, opt_state, grads)
        task = jnp.full(y.shape, t, jnp.int32)
        buffer = replay.add(buffer, offer, {"x": x, "y": y, "task": task})
        return params, opt_state, {**extra, "buffer": buffer}, loss
