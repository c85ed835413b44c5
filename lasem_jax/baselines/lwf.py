"""Learning without Forgetting: distillation of the old heads on new data (Li & Hoiem 2017)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lasem_jax.baselines import base
from lasem_jax.baselines.finetune import Finetune
from lasem_jax.core.frozen import RunConfig
from lasem_jax.networks import layers
from lasem_jax.task import Task


def distillation(new: jax.Array, old: jax.Array, temperature: float) -> jax.Array:
    """LwF's Eq. 2: `mean_b -sum_j softmax(old/T)_j log softmax(new/T)_j` of `[B, K]` logits."""
    target = jax.nn.softmax(old / temperature, axis=-1)
    return -(target * jax.nn.log_softmax(new / temperature, axis=-1)).sum(-1).mean()


class LwF(Finetune):
    """Learning without Forgetting (Li & Hoiem 2017, Sec. 3, Eq. 2 and Algorithm 1).

    At the start of task t the trunk and heads 0..t-1 are copied (theta_s, theta_o); training
    minimises `CE(h_t(x), y) + lambda_o * sum_{k<t} L_old(Y_o^k, h_k(x))` over the trunk and
    every head, with the recorded responses Y_o^k of the copy's head k on the new task's inputs
    (computed per minibatch from the copy, eval mode) and `L_old` the distillation loss of
    Eq. 2 at temperature T (`lwf.temperature = 2`, `lwf.lambda_o = 1`). Not done: the warm-up
    step that first trains the new head alone, and weight decay.
    """

    name = "lwf"

    def __init__(self, config: RunConfig, tasks: list[Task]) -> None:
        super().__init__(config, tasks)
        self.temperature = float(config.lwf.temperature)
        self.lambda_o = float(config.lwf.lambda_o)

    def loss(
        self, t: int, params: base.Params, extra: dict, x: jax.Array, y: jax.Array, rng: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """`(CE + lambda_o * sum of the old heads' distillation losses, logits [B, K_t])`."""
        feats = self.features(params["trunk"], x)
        logits = layers.apply_head(params["heads"][t], feats, dropout_rng=rng)
        loss = base.cross_entropy(logits, y)
        if t > 0:
            old = extra["old"]
            old_feats = jax.lax.stop_gradient(self.features(old["trunk"], x))
            for k in range(t):
                teacher = layers.apply_head(old["heads"][k], old_feats)
                student = layers.apply_head(params["heads"][k], feats, dropout_rng=rng)
                loss = loss + self.lambda_o * distillation(student, teacher, self.temperature)
        return loss, logits

    def start_task(self, t: int, key: jax.Array) -> None:
        """Adds head `t` and copies the network of tasks `< t` (the teacher)."""
        super().start_task(t, key)
        old = {"trunk": self.params["trunk"], "heads": self.params["heads"][:t]}
        self.extra = {"old": jax.tree.map(jnp.asarray, old)} if t > 0 else {}
