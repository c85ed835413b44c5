"""DARTS layer selection (Liu et al. 2019): a softmax-weighted mix of both paths per layer."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lasem_jax.baselines import base
from lasem_jax.config import run_config
from lasem_jax.core.frozen import RunConfig
from lasem_jax.engine import steps
from lasem_jax.networks import consolidate, layers
from lasem_jax.networks.model import Model
from lasem_jax.storage import tree_io
from lasem_jax.task import Task

Array = jax.Array
ORDERS = (1, 2)


class DartsState(NamedTuple):
    """What a DARTS minibatch changes: weights, architecture `alpha` `[L, 2]`, optimisers, rng."""

    params: base.Params
    alpha: Array
    opt_state: Any
    arch_opt_state: Any
    rng: Array


tree_io.register_namedtuple("lasem_jax.DartsState", DartsState)


def check_order(order: int) -> None:
    """Raises ValueError unless `order` (`config.darts.order`) is one of `ORDERS`."""
    if order not in ORDERS:
        raise ValueError(
            f"config.darts.order={order!r} is unknown; use one of {ORDERS} "
            "(1: first-order, 2: second-order)."
        )


def mixed_layer(model: Model, params: base.Params, mix: Array) -> Callable[[int, Array], Array]:
    """The layer function `mix[i, 0] * relu(specific) + mix[i, 1] * relu(transfer)`.

    Args:
      model: the task's model (both paths of every layer).
      params: `{"shared", "task"}` parameters.
      mix: `[L, 2]` path weights per layer (softmax of alpha); column 1 is the transfer path.

    Returns:
      `(i, h) -> z`, layer i's mixed post-activation output `[B, H, W, c_out]` on `h`.
    """

    def layer(i: int, h: Array) -> Array:
        (w_t, b_t), (w_s, b_s) = model.layer_kernels(params, i)
        z = layers.conv2d(h, jnp.concatenate([w_s, w_t], axis=-1))
        c = w_s.shape[-1]
        return mix[i, 0] * jax.nn.relu(z[..., :c] + b_s) + mix[i, 1] * jax.nn.relu(z[..., c:] + b_t)

    return layer


def mixed_logits(
    model: Model, params: base.Params, alpha: Array, x: Array, rng: Array | None = None
) -> Array:
    """Logits `[B, K]` of the mixed network on `x` `[B, H, W, C]`; dropout iff `rng` is given."""
    mix = jax.nn.softmax(alpha, axis=-1)
    feats, _ = base.conv_stack(model.arch, x, mixed_layer(model, params, mix))
    return model.head(params, feats, train=rng is not None, rng=rng)


def darts_loss(
    model: Model, params: base.Params, alpha: Array, x: Array, y: Array, rng: Array
) -> Array:
    """Training loss: cross-entropy plus the learner's penalty at `softmax(alpha)[:, 1]`."""
    logits = mixed_logits(model, params, alpha, x, rng)
    transfer_prob = jax.nn.softmax(alpha, axis=-1)[:, 1]
    return base.cross_entropy(logits, y) + model.regularizer(params, transfer_prob)


def arch_gradient(
    model: Model,
    params: base.Params,
    alpha: Array,
    x: Array,
    y: Array,
    rng: Array,
    *,
    order: int,
    unroll_lr: Array,
) -> Array:
    """`d Loss / d alpha` `[L, 2]` on the minibatch `x` `[B, H, W, C]`, `y` `[B]`.

    Order 1 differentiates the loss at the current weights. Order 2 differentiates
    `L(w', alpha)` through one unrolled SGD step `w' = w - unroll_lr * dL(w, alpha)/dw`, exactly
    (autodiff through the inner gradient) instead of the reference's finite differences.
    The same minibatch and dropout mask serve both steps (no validation split, as the reference).
    """
    check_order(order)

    def loss(w: base.Params, a: Array) -> Array:
        return darts_loss(model, w, a, x, y, rng)

    if order == 1:
        return jax.grad(loss, argnums=1)(params, alpha)

    def unrolled(a: Array) -> Array:
        grads = jax.grad(loss)(params, a)
        return loss(jax.tree_util.tree_map(lambda w, g: w - unroll_lr * g, params, grads), a)

    return jax.grad(unrolled)(alpha)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def darts_epoch(
    model: Model,
    order: int,
    batch_size: int,
    state: DartsState,
    x: Array,
    y: Array,
    lr: Array,
    arch_lr: Array,
    unroll_lr: Array,
) -> tuple[DartsState, Array]:
    """One epoch over seeded-shuffled minibatches: per minibatch an alpha step, then a weight step.

    Both steps are TF1 RMSProp with separate states; the weight step uses the updated alpha.

    Args:
      model: the task's model (static).
      order: 1 or 2, the architecture gradient (static, see `arch_gradient`).
      batch_size: minibatch size `B` (static).
      state: the DARTS state.
      x: `[N, H, W, C]` training images.
      y: `[N]` labels.
      lr: the weights' learning rate of this epoch.
      arch_lr: the architecture's learning rate of this epoch.
      unroll_lr: step size of the unrolled weight step (order 2 only).

    Returns:
      The new state and the `[floor(N/B)]` minibatch losses of the weight steps.
    """
    rng, perm = jax.random.split(state.rng)
    tx = steps.make_optimizer(0.0)

    def body(st: DartsState, idx: Array) -> tuple[DartsState, Array]:
        r, arch_drop, drop = jax.random.split(st.rng, 3)
        xb, yb = x[idx], y[idx]
        g_alpha = arch_gradient(
            model, st.params, st.alpha, xb, yb, arch_drop, order=order, unroll_lr=unroll_lr
        )
        updates, arch_opt = tx.update(g_alpha, st.arch_opt_state, st.alpha)
        alpha = optax.apply_updates(st.alpha, updates)
        loss, grads = jax.value_and_grad(lambda p: darts_loss(model, p, alpha, xb, yb, drop))(
            st.params
        )
        updates, opt = tx.update(grads, st.opt_state, st.params)
        return DartsState(optax.apply_updates(st.params, updates), alpha, opt, arch_opt, r), loss

    state = state._replace(
        opt_state=base.with_lr(state.opt_state, lr),
        arch_opt_state=base.with_lr(state.arch_opt_state, arch_lr),
        rng=rng,
    )
    return jax.lax.scan(body, state, base.minibatches(perm, len(x), batch_size))


def discrete_config(alpha: Any) -> np.ndarray:
    """`[L]` bool configuration of `alpha` `[L, 2]`: argmax per layer, ties to 0 (specific)."""
    return np.argmax(np.asarray(alpha), axis=-1) == 1


class Darts(base.Baseline):
    """DARTS over the learner's transfer path vs the task-specific conv of every layer.

    A task's configuration is the per-layer argmax of its alpha; the current task is evaluated
    with it, and at the task's end it is consolidated with LASEM's rules (docs/protocol.md §1.8).
    Alpha's learning rate is `config.darts.arch_lr`, or the weights' of the epoch if 0. Order 2
    unrolls one SGD step of size `config.optim.lr` (not decayed, as the reference) for any
    learner.

    Attributes:
      alphas: `[L, 2]` architecture weights per task so far (the final ones of finished tasks).
      state: the current task's `DartsState`, set by `start_task`, None once it has ended.
      shared: the consolidated shared parameters (those finished tasks are evaluated with).
    """

    name = "darts"
    uses_learner = True

    def __init__(self, config: RunConfig, tasks: list[Task]) -> None:
        super().__init__(config, tasks)
        self.order = int(config.darts.order)
        check_order(self.order)
        self.models = [run_config.make_model(config, task) for task in tasks]
        self.alphas: list[np.ndarray] = []
        self.finished: list[base.Params] = []
        self.chosen: list[np.ndarray] = []
        self.alive = np.zeros(self.models[0].num_layers, bool)
        self.shared: base.Params = {}
        self.state: DartsState | None = None

    def start_task(self, t: int, key: Array) -> None:
        """Refreshes dead shared layers, draws task params and resets alpha and both optimisers."""
        model = self.models[t]
        shared_key, task_key, run_key = jax.random.split(key, 3)
        if t == 0:
            self.shared = model.init_shared(shared_key)
        else:
            self.shared = consolidate.refresh_dead_layers(
                model, self.shared, self.alive, shared_key
            )
        params = {"shared": self.shared, "task": model.init_task(task_key)}
        alpha = jnp.zeros((model.num_layers, 2), jnp.float32)
        tx = steps.make_optimizer(0.0)
        self.state = DartsState(params, alpha, tx.init(params), tx.init(alpha), run_key)
        self.alphas.append(np.asarray(alpha))

    def train_epoch(self, t: int, x: Array, y: Array, lr: float) -> np.ndarray:
        """One epoch of alternating architecture and weight steps on task `t`."""
        arch_lr = float(self.config.darts.arch_lr) or lr
        self.state, losses = darts_epoch(
            self.models[t],
            self.order,
            int(self.config.train.batch_size),
            self.state,
            x,
            y,
            lr,
            arch_lr,
            float(self.config.optim.lr),
        )
        self.alphas[t] = np.asarray(self.state.alpha)
        return np.asarray(losses)

    def accuracy(self, k: int, x: Array, y: Array) -> float:
        """Task `k` with its configuration and task params, as `predict_state` holds them."""
        return self._accuracy_with(self.predict_state(), k, x, y)

    def _accuracy_with(self, state: base.Params, k: int, x: Array, y: Array) -> float:
        """Task `k`'s accuracy with `state` (`predict_state`'s structure)."""
        params = {"shared": state["shared"], "task": state["tasks"][k]}
        config = jnp.asarray(state["configs"][k])
        chunk = int(self.config.train.eval_chunk)
        return float(steps.jitted_accuracy(self.models[k], params, config, x, y, chunk=chunk))

    def accuracy_at_init(self, t: int, first_key: Array, x: Array, y: Array) -> float | None:
        """Task `t` with its fresh parameters and configuration and task 0's initial shared."""
        initial = self.models[0].init_shared(jax.random.split(first_key, 3)[0])
        return self._accuracy_with({**self.predict_state(), "shared": initial}, t, x, y)

    def end_task(self, t: int) -> None:
        """Consolidates task `t` with its discrete configuration (LASEM's rules).

        The kept model (consolidated shared params, stored task params) serves every task from
        now on; the training state is dropped.
        """
        config = discrete_config(self.alphas[t])
        self.shared, frozen, self.alive = consolidate.consolidate(
            self.shared,
            self.state.params["shared"],
            self.state.params["task"],
            config,
            self.alive,
        )
        self.finished.append(frozen)
        self.chosen.append(config)
        self.state = None

    def chosen_config(self, t: int) -> np.ndarray:
        """`[L]` bool: the stored configuration of a finished task, else argmax of its alpha."""
        return self.chosen[t] if t < len(self.chosen) else discrete_config(self.alphas[t])

    def num_parameters(self) -> int:
        """Live shared parameters plus every finished task's kept parameters."""
        return consolidate.live_parameter_count(self.shared, self.finished, self.chosen)

    def predict(self, state: base.Params, k: int, x: Array) -> Array:
        """Logits `[N, K_k]` of task `k`'s configuration network (see `predict_state`)."""
        params = {"shared": state["shared"], "task": state["tasks"][k]}
        return self.models[k].apply_config(params, x, state["configs"][k])

    def predict_state(self) -> base.Params:
        """`{"shared", "tasks": [task params], "configs": [[L] bool]}`, one entry per task.

        Finished tasks use the consolidated shared params; while a task trains, the live shared
        params and the task's current params and configuration (argmax of its alpha).
        """
        shared, tasks, configs = self.shared, list(self.finished), list(self.chosen)
        if self.state is not None:
            shared = self.state.params["shared"]
            tasks.append(self.state.params["task"])
            configs.append(discrete_config(self.state.alpha))
        return {"shared": shared, "tasks": tasks, "configs": configs}

    def load_predict_state(self, state: base.Params) -> None:
        """Serves the tasks of `state` as finished tasks (see `predict_state`)."""
        self.shared = base.to_device(state["shared"])
        self.finished = list(base.to_device(state["tasks"]))
        self.chosen = [np.asarray(c, bool) for c in state["configs"]]
        self.alive = np.logical_or.reduce([np.zeros_like(self.alive), *self.chosen])

    def train_state(self) -> base.Params:
        """`{"shared", "finished", "chosen", "alive", "alphas", "state"}` (`state` may be None)."""
        return {
            "shared": self.shared,
            "finished": list(self.finished),
            "chosen": list(self.chosen),
            "alive": self.alive,
            "alphas": list(self.alphas),
            "state": self.state,
        }

    def load_train_state(self, state: base.Params) -> None:
        """Resumes from `train_state()`."""
        self.shared, self.finished, self.state = base.to_device(
            (state["shared"], list(state["finished"]), state["state"])
        )
        self.chosen = [np.asarray(c, bool) for c in state["chosen"]]
        self.alive = np.asarray(state["alive"], bool)
        self.alphas = [np.asarray(a) for a in state["alphas"]]
