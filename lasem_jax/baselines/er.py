"""Experience replay with a reservoir memory (Chaudhry et al. 2019, "On Tiny Episodic Memories")."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from lasem_jax.baselines import base, replay
from lasem_jax.baselines.finetune import Finetune
from lasem_jax.core.frozen import RunConfig
from lasem_jax.task import Task


def masked_cross_entropy(logits: jax.Array, y: jax.Array, valid: jax.Array) -> jax.Array:
    """`[B]` softmax cross-entropies of `[B, K]` logits and `[B]` labels, 0 where not `valid`."""
    return jnp.where(valid, optax.softmax_cross_entropy_with_integer_labels(logits, y), 0.0)


class ER(Finetune):
    """Experience replay (ER-reservoir, Chaudhry et al. 2019, Sec. 3 and Alg. 1).

    Each step draws a replay minibatch B_M of `train.batch_size` distinct examples from the
    memory M and takes one step on the joint minibatch B u B_M,
    `L = sum_{(x, y, k) in B u B_M} CE(h_k(x), y) / (|B| + |B_M|)`, every example through the
    head of its own task k; then offers B to M by reservoir sampling (`replay.add`). The memory
    holds `er.buffer_size` examples of every task so far (the current one included) and, like
    its counter and keys, is part of `train_state`.
    """

    name = "er"
    keeps_logits = False  # whether the memory keeps the logits its examples were trained with

    def __init__(self, config: RunConfig, tasks: list[Task]) -> None:
        super().__init__(config, tasks)
        self.buffer_size = int(self.section().buffer_size)

    def section(self) -> Any:
        """The method's config section."""
        return self.config[self.name]

    def start_task(self, t: int, key: jax.Array) -> None:
        """Adds head `t`; on the first task, an empty memory (with room for logits if kept)."""
        super().start_task(t, key)
        if t == 0:
            shape = self.tasks[0].image_shape
            keep = self.keeps_logits
            buffer = replay.init_buffer(self.buffer_size, shape, self.kmax, logits=keep)
            self.extra = {"buffer": buffer}

    def replay_terms(
        self, params: base.Params, buffer: replay.Buffer, key: jax.Array, rng: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """Summed CE `[]` and count `[]` of a replay minibatch drawn with `key`."""
        idx, valid = replay.sample(buffer, key, self.batch_size)
        logits = self.own_logits(params, buffer["x"][idx], buffer["task"][idx], rng)
        ce = masked_cross_entropy(logits, buffer["y"][idx], valid)
        return ce.sum(), valid.sum()

    def step(
        self, t: int, params: base.Params, opt_state: Any, extra: dict, batch: tuple, rng: jax.Array
    ) -> tuple[base.Params, Any, dict, jax.Array]:
        """One step on the current and a replayed minibatch, then the reservoir update."""
        x, y = batch
        drop, draw, offer = jax.random.split(rng, 3)

        def loss_fn(p: base.Params) -> jax.Array:
            ce = optax.softmax_cross_entropy_with_integer_labels(self.head_logits(p, t, x, drop), y)
            replayed, count = self.replay_terms(p, extra["buffer"], draw, drop)
            return (ce.sum() + replayed) / (y.shape[0] + count)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        params, opt_state = self.apply(params, opt_state, grads)
        task = jnp.full(y.shape, t, jnp.int32)
        buffer = replay.add(extra["buffer"], offer, {"x": x, "y": y, "task": task})
        return params, opt_state, {**extra, "buffer": buffer}, loss
