"""Multi-head fine-tuning: one shared conv trunk, one head per task, no protection."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lasem_jax.baselines import base
from lasem_jax.core.frozen import RunConfig
from lasem_jax.engine import steps
from lasem_jax.networks import layers
from lasem_jax.networks.model import count_params
from lasem_jax.task import Task

NEG = -1e9  # logit of a padded class (finite: its softmax weight is exactly 0 in float32)


class Finetune(base.Baseline):
    """Naive task-incremental fine-tuning, and the skeleton of the regularisation/replay methods.

    One conv trunk (`base.conv_stack` of plain layers) is shared by every task; task t gets its
    own FC head (`init_head` with the task's classes), so tasks may differ in classes. Task k is
    evaluated with head k. The trunk and the heads of tasks 0..t are trained on task t (old heads
    get no gradient from its loss, so RMSProp leaves them unchanged); the optimiser is fresh per
    task. Subclasses change `loss` (regularisers), `step` (replay, gradient projection, path
    integrals) and `start_task`/`end_task`; their state is the dict `self.extra`, carried through
    the jitted epoch and saved in `train_state`.

    Attributes:
      params: `{"trunk": {"layer_i": {"w", "b"}}, "heads": [FC head per started task]}`.
      extra: the method's state (buffers, Fisher, anchors, ...): a dict of arrays.
      num_classes: `[T]` classes per task; `kmax` their maximum (width of padded logits).
    """

    name = "finetune"

    def __init__(self, config: RunConfig, tasks: list[Task]) -> None:
        super().__init__(config, tasks)
        self.num_classes = np.array([task.num_classes for task in self.tasks], np.int32)
        self.kmax = int(self.num_classes.max())
        self.params: base.Params = {}
        self.extra: dict[str, Any] = {}
        self.opt_state: Any = None
        self.rng: jax.Array | None = None
        self.epoch = 0
        self.batch_size = int(config.train.batch_size)
        self._epoch = jax.jit(self._run_epoch, static_argnums=0)
        self._accuracy = base.make_accuracy(self._eval_logits, int(config.train.eval_chunk))

    def features(self, trunk: base.Params, x: jax.Array) -> jax.Array:
        """Trunk features `[B, F]` of `x` `[B, H, W, C]`."""
        return base.conv_stack(self.arch, x, base.plain_layer(trunk))[0]

    def head_logits(
        self, params: base.Params, k: int, x: jax.Array, rng: jax.Array | None = None
    ) -> jax.Array:
        """Logits `[B, K_k]` of head `k` on `x` `[B, H, W, C]` (dropout with `rng`)."""
        return layers.apply_head(
            params["heads"][k], self.features(params["trunk"], x), dropout_rng=rng
        )

    def own_logits(
        self, params: base.Params, x: jax.Array, task: jax.Array, rng: jax.Array | None = None
    ) -> jax.Array:
        """Logits `[B, kmax]` of each example `x[b]` through its own task's head `task[b]`.

        Classes beyond the task's are `NEG`; `task` holds ids of started tasks only.
        """
        feats = self.features(params["trunk"], x)
        pad = [
            jnp.pad(layers.apply_head(h, feats, dropout_rng=rng), ((0, 0), (0, self.kmax - k)))
            for h, k in zip(params["heads"], self.num_classes, strict=False)
        ]
        out = jnp.stack(pad)[task, jnp.arange(x.shape[0])]
        return jnp.where(self.class_mask(task), out, NEG)

    def class_mask(self, task: jax.Array) -> jax.Array:
        """`[B, kmax]` bool: the classes of each example's task."""
        return jnp.arange(self.kmax) < jnp.asarray(self.num_classes)[task][:, None]

    def _eval_logits(self, net: base.Params, x: jax.Array) -> jax.Array:
        return layers.apply_head(net["head"], self.features(net["trunk"], x))

    def loss(
        self, t: int, params: base.Params, extra: dict, x: jax.Array, y: jax.Array, rng: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """`(loss, logits [B, K_t])` of a minibatch of task `t`: here the cross-entropy."""
        del extra
        logits = self.head_logits(params, t, x, rng)
        return base.cross_entropy(logits, y), logits

    def step(
        self, t: int, params: base.Params, opt_state: Any, extra: dict, batch: tuple, rng: jax.Array
    ) -> tuple[base.Params, Any, dict, jax.Array]:
        """One RMSProp step on `loss` for `batch = (x [B, H, W, C], y [B])`.

        Returns:
          `(params, opt_state, extra, loss)`.
        """
        (loss, _), grads = jax.value_and_grad(self.loss, argnums=1, has_aux=True)(
            t, params, extra, *batch, rng
        )
        params, opt_state = self.apply(params, opt_state, grads)
        return params, opt_state, extra, loss

    @staticmethod
    def apply(params: base.Params, opt_state: Any, grads: base.Params) -> tuple[base.Params, Any]:
        """The TF1 RMSProp update of `steps.make_optimizer` (learning rate in `opt_state`)."""
        updates, opt_state = steps.make_optimizer(0.0).update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    def _run_epoch(
        self,
        t: int,
        params: base.Params,
        opt_state: Any,
        rng: jax.Array,
        extra: dict,
        x: jax.Array,
        y: jax.Array,
        lr: jax.Array,
    ) -> tuple:
        rng, perm = jax.random.split(rng)

        def body(carry: tuple, idx: jax.Array) -> tuple[tuple, jax.Array]:
            p, o, e, r = carry
            r, key = jax.random.split(r)
            p, o, e, loss = self.step(t, p, o, e, (x[idx], y[idx]), key)
            return (p, o, e, r), loss

        carry = (params, base.with_lr(opt_state, lr), extra, rng)
        carry, losses = jax.lax.scan(body, carry, base.minibatches(perm, len(x), self.batch_size))
        return (*carry, losses)

    def start_task(self, t: int, key: jax.Array) -> None:
        """Adds head `t` (and the trunk on the first task) and a fresh optimiser."""
        init_key, self.rng = jax.random.split(key)
        gen = layers.generator(init_key)
        trunk = (
            base.init_plain_convs(gen, self.arch, he=self.he) if t == 0 else self.params["trunk"]
        )
        head = base.init_head(gen, self.arch, self.tasks[t].num_classes, he=self.he)
        heads = [*self.params.get("heads", [])[:t], head]
        self.params = {"trunk": trunk, "heads": heads}
        self.opt_state = steps.make_optimizer(0.0).init(self.params)
        self.epoch = 0

    def accuracy_at_init(
        self, t: int, first_key: jax.Array, x: jax.Array, y: jax.Array
    ) -> float | None:
        """Head `t` as just drawn, on the trunk as task 0's start drew it (`start_task`)."""
        gen = layers.generator(jax.random.split(first_key)[0])
        trunk = base.init_plain_convs(gen, self.arch, he=self.he)
        return float(self._accuracy({"trunk": trunk, "head": self.params["heads"][t]}, x, y))

    def train_epoch(self, t: int, x: jax.Array, y: jax.Array, lr: float) -> np.ndarray:
        """One epoch on task `t` (a jitted scan over its minibatches)."""
        self.params, self.opt_state, self.extra, self.rng, losses = self._epoch(
            t, self.params, self.opt_state, self.rng, self.extra, x, y, lr
        )
        self.epoch += 1
        return np.asarray(losses)

    def accuracy(self, k: int, x: jax.Array, y: jax.Array) -> float:
        """Accuracy of head `k` on task `k`'s data."""
        net = {"trunk": self.params["trunk"], "head": self.params["heads"][k]}
        return float(self._accuracy(net, x, y))

    def num_parameters(self) -> int:
        """The trunk and every head."""
        return count_params(self.params)

    def predict(self, state: base.Params, k: int, x: jax.Array) -> jax.Array:
        """Logits `[N, K_k]` of head `k` on `x` `[N, H, W, C]`."""
        return self.head_logits(state, k, x)

    def predict_state(self) -> base.Params:
        """`{"trunk": conv layers, "heads": [FC head per task]}`."""
        return self.params

    def load_predict_state(self, state: base.Params) -> None:
        """Serves the tasks of `state` (see `predict_state`)."""
        state = base.to_device(state)
        self.params = {"trunk": state["trunk"], "heads": list(state["heads"])}

    def train_state(self) -> base.Params:
        """`{"params", "opt_state", "rng", "extra", "epoch"}`: everything the run depends on."""
        return {
            "params": self.params,
            "opt_state": self.opt_state,
            "rng": self.rng,
            "extra": self.extra,
            "epoch": self.epoch,
        }

    def load_train_state(self, state: base.Params) -> None:
        """Resumes from `train_state()`."""
        self.load_predict_state(state["params"])
        self.opt_state, self.rng, extra = base.to_device(
            (state["opt_state"], state["rng"], state["extra"])
        )
        self.extra, self.epoch = dict(extra), int(state["epoch"])


def weighted_sq_distance(
    weights: base.Params, params: base.Params, anchor: base.Params
) -> jax.Array:
    """`sum_i weights_i (params_i - anchor_i)^2` over three pytrees of one structure -> `[]`."""
    terms = jax.tree.map(lambda w, p, a: jnp.sum(w * (p - a) ** 2), weights, params, anchor)
    return sum(jax.tree.leaves(terms), jnp.zeros((), jnp.float32))
