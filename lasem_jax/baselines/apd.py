"""Additive Parameter Decomposition (APD, Yoon et al. 2020) as in the reference code.

The reference code's APD: docs/protocol.md §10.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lasem_jax.baselines import base
from lasem_jax.core import layout
from lasem_jax.core.frozen import RunConfig
from lasem_jax.engine import steps
from lasem_jax.networks import layers
from lasem_jax.networks.blocks import BlockNetwork
from lasem_jax.networks.model import count_params
from lasem_jax.task import Task


def compose_kernel(w_shared: jax.Array, mask: jax.Array, additive: jax.Array) -> jax.Array:
    """A task's kernel `W_shared * sigmoid(M_t) + A_t`; all `[k, k, c_in, c_out]`."""
    return w_shared * jax.nn.sigmoid(mask) + additive


def apd_logits(
    arch: BlockNetwork,
    shared: base.Params,
    task: base.Params,
    x: jax.Array,
    rng: jax.Array | None = None,
) -> jax.Array:
    """Logits `[B, K]` of one task's network on images `x` `[B, H, W, C]`.

    Args:
      arch: the architecture.
      shared: `{"layer_i": {"w": [k, k, c_in, c_out], "b": [c_out]}}`, the shared kernels and
        biases.
      task: `{"convs": {"layer_i": {"mask": ..., "add": ...}}, "head": ...}`, the task's masks
        and additives (kernel shaped) and FC head.
      x: images.
      rng: dropout key (training) or None (evaluation).
    """

    def layer_fn(i: int, h: jax.Array) -> jax.Array:
        name = layout.layer_key(i)
        ts = task["convs"][name]
        w = compose_kernel(shared[name]["w"], ts["mask"], ts["add"])
        return jax.nn.relu(layers.conv2d(h, w) + shared[name]["b"])

    feats, _ = base.conv_stack(arch, x, layer_fn)
    return layers.apply_head(task["head"], feats, dropout_rng=rng)


def additive_penalty(task_convs: base.Params) -> jax.Array:
    """`mean_l mean|A_l|` over the layers of `{"layer_i": {"add": [k, k, c_in, c_out], ...}}`."""
    return jnp.mean(jnp.stack([jnp.abs(ts["add"]).mean() for ts in task_convs.values()]))


def drift_penalty(shared: base.Params, shared_prev: dict[str, jax.Array]) -> jax.Array:
    """`mean_l ||W_l - W_l^prev||^2 / 2 / numel(W_l)` over the shared kernels (not the biases).

    Args:
      shared: `{"layer_i": {"w": [k, k, c_in, c_out], "b": [c_out]}}`.
      shared_prev: `{"layer_i": [k, k, c_in, c_out]}`, the kernels before the current task.
    """
    terms = [
        jnp.sum((shared[name]["w"] - prev) ** 2) / 2.0 / prev.size
        for name, prev in shared_prev.items()
    ]
    return jnp.mean(jnp.stack(terms))


def apd_loss(
    arch: BlockNetwork,
    params: base.Params,
    shared_prev: dict[str, jax.Array],
    x: jax.Array,
    y: jax.Array,
    rng: jax.Array,
    *,
    lambda1: float,
    lambda2: float,
) -> jax.Array:
    """CE + `lambda1 * additive_penalty` + `lambda2 * drift_penalty` of the task being trained.

    Args:
      arch: the architecture.
      params: `{"shared": ..., "task": ...}` as in `apd_logits` (the trainable parameters).
      shared_prev: the shared kernels before this task (frozen input, see `drift_penalty`).
      x: `[B, H, W, C]` images.
      y: `[B]` int labels.
      rng: dropout key.
      lambda1: weight of the L1 penalty of the additives.
      lambda2: weight of the drift penalty of the shared kernels.

    Returns:
      The scalar loss.
    """
    logits = apd_logits(arch, params["shared"], params["task"], x, rng)
    return (
        base.cross_entropy(logits, y)
        + lambda1 * additive_penalty(params["task"]["convs"])
        + lambda2 * drift_penalty(params["shared"], shared_prev)
    )


class APD(base.Baseline):
    """APD in the simplified form of the reference's `new_APD_conv_layer` (docs/protocol.md §10).

    Every conv layer has a shared kernel and bias; task t's kernel is
    `W_shared * sigmoid(M_t) + A_t` with its own mask `M_t` and additive `A_t` (trunc-normal
    0.05 init), and task t has its own FC head (so tasks may differ in class count). Training
    task t updates the shared kernels and biases and `M_t`, `A_t`, head_t; earlier tasks' masks,
    additives and heads are frozen, but they are evaluated with the *current* shared parameters,
    so drift of the shared kernels can make them forget. The loss adds
    `lambda1 * mean_l mean|A_t,l|` and `lambda2 * mean_l ||W_l - W_l^prev||^2 / 2 / numel`, with
    `W^prev` the shared kernels when task t started, passed to the jitted loss as a frozen input.
    Unlike the reference code, whose lookup of `W^prev` silently finds nothing, the drift term is
    active from the second task on; on the first task `W^prev` is the initial value (a pull
    towards the random init, zero at the start). Biases are shared but not drift-penalised.

    Simplified relative to the APD paper, as in the reference code: no hierarchical knowledge
    consolidation (no clustering of task-adaptive parameters into locally shared ones), no
    retroactive update of earlier tasks' parameters to undo drift, no sparsification or
    pruning of the additives beyond the L1 term, no masks on the FC layers (FC heads are plain
    task-specific layers), and no order-robustness machinery.
    """

    name = "apd"

    def __init__(self, config: RunConfig, tasks: list[Task]) -> None:
        super().__init__(config, tasks)
        self.shared: base.Params = {}
        self.shared_prev: dict[str, jax.Array] = {}
        self.task_params: list[base.Params] = []
        self.opt_state: Any = None
        self.rng: jax.Array | None = None
        loss = functools.partial(
            apd_loss,
            self.arch,
            lambda1=float(config.apd.lambda1),
            lambda2=float(config.apd.lambda2),
        )
        self._epoch = base.make_epoch(loss, int(config.train.batch_size))
        self._accuracy = base.make_accuracy(
            lambda p, xb: apd_logits(self.arch, p[0], p[1], xb), int(config.train.eval_chunk)
        )

    def start_task(self, t: int, key: jax.Array) -> None:
        """Creates task `t`'s masks, additives and head (and the shared layers on task 0)."""
        init_key, self.rng = jax.random.split(key)
        gen = layers.generator(init_key)
        if t == 0:
            self.shared = base.init_plain_convs(gen, self.arch, he=self.he)
        self.shared_prev = {name: layer["w"] for name, layer in self.shared.items()}
        convs = {
            name: {
                "mask": layers.truncated_normal(gen, layer["w"].shape),
                "add": layers.truncated_normal(gen, layer["w"].shape),
            }
            for name, layer in self.shared.items()
        }
        head = base.init_head(gen, self.arch, self.tasks[t].num_classes, he=self.he)
        self.task_params.append({"convs": convs, "head": head})
        self.opt_state = steps.make_optimizer(0.0).init(self._trainable(t))

    def _trainable(self, t: int) -> base.Params:
        return {"shared": self.shared, "task": self.task_params[t]}

    def train_epoch(self, t: int, x: jax.Array, y: jax.Array, lr: float) -> np.ndarray:
        """One epoch on task `t`: the shared layers and task `t`'s own parameters move."""
        params, self.opt_state, self.rng, losses = self._epoch(
            self._trainable(t), self.opt_state, self.rng, self.shared_prev, x, y, lr
        )
        self.shared, self.task_params[t] = params["shared"], params["task"]
        return np.asarray(losses)

    def accuracy(self, k: int, x: jax.Array, y: jax.Array) -> float:
        """Accuracy of task `k`: current shared layers, task `k`'s masks, additives and head."""
        return float(self._accuracy((self.shared, self.task_params[k]), x, y))

    def num_parameters(self) -> int:
        """Shared kernels and biases plus every seen task's masks, additives and head."""
        return count_params(self.shared) + count_params(self.task_params)

    def predict(self, state: base.Params, k: int, x: jax.Array) -> jax.Array:
        """Logits `[N, K_k]` of task `k` with the shared layers and its own parameters."""
        return apd_logits(self.arch, state["shared"], state["tasks"][k], x)

    def predict_state(self) -> base.Params:
        """`{"shared": {"layer_i": {"w", "b"}}, "tasks": [{"convs", "head"} per task]}`."""
        return {"shared": self.shared, "tasks": list(self.task_params)}

    def load_predict_state(self, state: base.Params) -> None:
        """Serves the tasks of `state` (see `predict_state`)."""
        state = base.to_device(state)
        self.shared, self.task_params = state["shared"], list(state["tasks"])

    def train_state(self) -> base.Params:
        """`predict_state()` plus `shared_prev` (drift anchor), `opt_state` and `rng`."""
        return {
            **self.predict_state(),
            "shared_prev": self.shared_prev,
            "opt_state": self.opt_state,
            "rng": self.rng,
        }

    def load_train_state(self, state: base.Params) -> None:
        """Resumes from `train_state()`."""
        self.load_predict_state(state)
        self.shared_prev, self.opt_state, self.rng = base.to_device(
            (state["shared_prev"], state["opt_state"], state["rng"])
        )
