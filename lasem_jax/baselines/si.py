"""Synaptic Intelligence: path-integral importances on the shared trunk (Zenke et al. 2017)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from lasem_jax.baselines import base
from lasem_jax.baselines.finetune import Finetune, weighted_sq_distance
from lasem_jax.core.frozen import RunConfig
from lasem_jax.task import Task


class SI(Finetune):
    """Synaptic Intelligence (Zenke, Poole & Ganguli 2017, Eq. 3-5).

    Task mu minimises the surrogate loss `L_mu + c * sum_k Omega_k (theta~_k - theta_k)^2`
    (Eq. 4) over the trunk, theta~ the trunk at the end of task mu-1. During a task every
    update adds the path integral `w_k -= g_k * Delta theta_k` (Eq. 3; g the gradient of the
    unregularised loss, as in the authors' code); at its end
    `Omega_k += w_k / ((Delta_k)^2 + xi)` (Eq. 5, Delta the trunk's change over the task) and w
    restarts at 0. Defaults `si.c = 0.1`, `si.xi = 1e-3` (the paper's split CIFAR-10/100 runs).
    """

    name = "si"

    def __init__(self, config: RunConfig, tasks: list[Task]) -> None:
        super().__init__(config, tasks)
        self.c, self.xi = float(config.si.c), float(config.si.xi)

    def step(
        self, t: int, params: base.Params, opt_state: Any, extra: dict, batch: tuple, rng: jax.Array
    ) -> tuple[base.Params, Any, dict, jax.Array]:
        """One step on the surrogate loss, accumulating the path integral `w`."""
        (ce, _), grads = jax.value_and_grad(super().loss, argnums=1, has_aux=True)(
            t, params, extra, *batch, rng
        )

        def penalty(trunk: base.Params) -> jax.Array:
            return self.c * weighted_sq_distance(extra["omega"], trunk, extra["anchor"])

        value, pen_grads = jax.value_and_grad(penalty)(params["trunk"])
        total = {**grads, "trunk": jax.tree.map(jnp.add, grads["trunk"], pen_grads)}
        new, opt_state = self.apply(params, opt_state, total)
        w = jax.tree.map(
            lambda w, g, a, b: w - g * (a - b),
            extra["w"],
            grads["trunk"],
            new["trunk"],
            params["trunk"],
        )
        return new, opt_state, {**extra, "w": w}, ce + value

    def start_task(self, t: int, key: jax.Array) -> None:
        """Adds head `t`; anchors the penalty at the trunk now and restarts `w`."""
        super().start_task(t, key)
        trunk = self.params["trunk"]
        zeros = jax.tree.map(jnp.zeros_like, trunk)
        omega = zeros if t == 0 else self.extra["omega"]
        self.extra = {"omega": omega, "anchor": trunk, "w": zeros}

    def end_task(self, t: int) -> None:
        """`Omega += w / (Delta^2 + xi)` (Eq. 5)."""
        omega = jax.tree.map(
            lambda o, w, a, b: o + w / ((a - b) ** 2 + self.xi),
            self.extra["omega"],
            self.extra["w"],
            self.params["trunk"],
            self.extra["anchor"],
        )
        self.extra = {**self.extra, "omega": omega}
