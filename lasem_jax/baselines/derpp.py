"""DER++: replay of stored logits and labels (Buzzega et al. 2020, "Dark Experience Replay")."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from lasem_jax.baselines import base, replay
from lasem_jax.baselines.er import ER, masked_cross_entropy
from lasem_jax.core.frozen import RunConfig
from lasem_jax.task import Task


class DERPP(ER):
    """DER++ (Buzzega et al. 2020, Eq. 6), task-incremental.

    The memory (`derpp.buffer_size`, reservoir sampling) keeps inputs, labels, task ids and the
    logits the network gave them when they were trained (the current head's, padded to the
    widest task). Each step minimises
    `CE(h_t(x), y) + alpha * ||h_k(x') - z'||^2 + beta * CE(h_k(x''), y'')` (Eq. 6) with
    (x', z', k) and (x'', y'', k) two independent replay minibatches of `train.batch_size`,
    every replayed example through its own task's head k; the squared error is the mean over
    the task's classes and the minibatch. Defaults `derpp.alpha = 0.1`, `derpp.beta = 0.5`.
    """

    name = "derpp"
    keeps_logits = True

    def __init__(self, config: RunConfig, tasks: list[Task]) -> None:
        super().__init__(config, tasks)
        self.alpha, self.beta = float(self.section().alpha), float(self.section().beta)

    def step(
        self, t: int, params: base.Params, opt_state: Any, extra: dict, batch: tuple, rng: jax.Array
    ) -> tuple[base.Params, Any, dict, jax.Array]:
        """One step of Eq. 6, then the reservoir update with this step's logits."""
        x, y = batch
        buffer = extra["buffer"]
        drop, draw_mse, draw_ce, offer = jax.random.split(rng, 4)
        i1, v1 = replay.sample(buffer, draw_mse, self.batch_size)
        i2, v2 = replay.sample(buffer, draw_ce, self.batch_size)

        def loss_fn(p: base.Params) -> tuple[jax.Array, jax.Array]:
            logits = self.head_logits(p, t, x, drop)
            z = self.own_logits(p, buffer["x"][i1], buffer["task"][i1], drop)
            mask = self.class_mask(buffer["task"][i1]) & v1[:, None]
            sq = jnp.where(mask, (z - buffer["logits"][i1]) ** 2, 0.0)
            mse = sq.sum() / jnp.maximum(mask.sum(), 1)
            z2 = self.own_logits(p, buffer["x"][i2], buffer["task"][i2], drop)
            ce = masked_cross_entropy(z2, buffer["y"][i2], v2).sum() / jnp.maximum(v2.sum(), 1)
            loss = base.cross_entropy(logits, y) + self.alpha * mse + self.beta * ce
            return loss, logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        params, opt_state = self.apply(params, opt_state, grads)
        stored = jnp.pad(jax.lax.stop_gradient(logits), ((0, 0), (0, self.kmax - logits.shape[1])))
        task = jnp.full(y.shape, t, jnp.int32)
        items = {"x": x, "y": y, "task": task, "logits": stored}
        buffer = replay.add(buffer, offer, items)
        return params, opt_state, {**extra, "buffer": buffer}, loss
