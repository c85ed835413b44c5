"""Online EWC: a running diagonal Fisher penalty on the shared trunk (Schwarz et al. 2018)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lasem_jax.baselines import base
from lasem_jax.baselines.finetune import Finetune, weighted_sq_distance
from lasem_jax.core.frozen import RunConfig
from lasem_jax.task import Task


class EWC(Finetune):
    """Online EWC (Schwarz et al. 2018, "Progress & Compress", Sec. 2.3, online EWC).

    Task t minimises `CE_t + lambda/2 * sum_i F_i (theta_i - theta*_i)^2` over the trunk's
    parameters, with theta* the trunk at the end of task t-1 and the running Fisher
    `F = gamma * F + F_{t-1}` (the online-EWC recursion, `ewc.gamma`, `ewc.lambda_`). F_t is the
    diagonal empirical Fisher of task t, `mean_n (d log p(y_n | x_n) / d theta)^2` over its
    training set at the end of its last epoch (eval mode: no dropout). Heads are task-specific
    and not penalised (an old head gets no gradient from a new task's loss).
    """

    name = "ewc"

    def __init__(self, config: RunConfig, tasks: list[Task]) -> None:
        super().__init__(config, tasks)
        self.lam, self.gamma = float(config.ewc.lambda_), float(config.ewc.gamma)
        self.epochs = int(config.train.epochs_per_task)
        self._fisher = jax.jit(self.fisher, static_argnums=1)

    def loss(
        self, t: int, params: base.Params, extra: dict, x: jax.Array, y: jax.Array, rng: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """`(CE + lambda/2 * sum F (theta - theta*)^2, logits [B, K_t])`."""
        ce, logits = super().loss(t, params, extra, x, y, rng)
        penalty = weighted_sq_distance(extra["fisher"], params["trunk"], extra["anchor"])
        return ce + 0.5 * self.lam * penalty, logits

    def fisher(self, params: base.Params, t: int, x: jax.Array, y: jax.Array) -> base.Params:
        """Diagonal empirical Fisher of the trunk on `x` `[N, H, W, C]`, `y` `[N]` (task `t`)."""

        def sq_grad(example: tuple[jax.Array, jax.Array]) -> base.Params:
            xi, yi = example

            def log_lik(trunk: base.Params) -> jax.Array:
                logits = self.head_logits({**params, "trunk": trunk}, t, xi[None])
                return -base.cross_entropy(logits, yi[None])

            return jax.tree.map(jnp.square, jax.grad(log_lik)(params["trunk"]))

        per_example = jax.lax.map(sq_grad, (x, y), batch_size=self.batch_size)
        return jax.tree.map(lambda g: g.mean(axis=0), per_example)

    def start_task(self, t: int, key: jax.Array) -> None:
        """Adds head `t`; on the first task, a zero Fisher (no penalty)."""
        super().start_task(t, key)
        if t == 0:
            zeros = jax.tree.map(jnp.zeros_like, self.params["trunk"])
            self.extra = {"fisher": zeros, "anchor": self.params["trunk"], "fisher_t": zeros}

    def train_epoch(self, t: int, x: jax.Array, y: jax.Array, lr: float) -> np.ndarray:
        """One epoch; after the task's last one, its Fisher `F_t` (merged by `end_task`)."""
        losses = super().train_epoch(t, x, y, lr)
        if self.epoch == self.epochs:
            self.extra = {**self.extra, "fisher_t": self._fisher(self.params, t, x, y)}
        return losses

    def end_task(self, t: int) -> None:
        """`F = gamma * F + F_t` and `theta* = theta`."""
        fisher = jax.tree.map(
            lambda f, ft: self.gamma * f + ft, self.extra["fisher"], self.extra["fisher_t"]
        )
        zeros = jax.tree.map(jnp.zeros_like, fisher)
        self.extra = {"fisher": fisher, "anchor": self.params["trunk"], "fisher_t": zeros}
