"""One network, output layer included, for all tasks: the lower reference (docs/protocol.md §10)."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from lasem_jax.baselines import base
from lasem_jax.core.frozen import RunConfig
from lasem_jax.engine import steps
from lasem_jax.networks import layers
from lasem_jax.networks.model import count_params
from lasem_jax.task import Task


class SingleNetwork(base.Baseline):
    """A single conv + FC network trained on every task in turn, with one shared output layer.

    All tasks write to the same output units, so every task must have the same number of
    classes (docs/protocol.md §10); the optimiser state is reset per task as for the other methods.
    """

    name = "single_network"

    def __init__(self, config: RunConfig, tasks: list[Task]) -> None:
        super().__init__(config, tasks)
        counts = sorted({task.num_classes for task in tasks})
        if len(counts) > 1:
            raise ValueError(
                f"single_network shares one output layer, so every task needs the same number "
                f"of classes; these tasks have {counts}. Use another method or equal tasks."
            )
        self.params: base.Params = {}
        self.opt_state: Any = None
        self.rng: jax.Array | None = None
        self._epoch = base.make_epoch(self._loss, int(config.train.batch_size))
        self._accuracy = base.make_accuracy(self._logits, int(config.train.eval_chunk))

    def _logits(self, params: base.Params, x: jax.Array, rng: jax.Array | None = None) -> jax.Array:
        feats, _ = base.conv_stack(self.arch, x, base.plain_layer(params["conv"]))
        return layers.apply_head(params["head"], feats, dropout_rng=rng)

    def predict(self, state: base.Params, k: int, x: jax.Array) -> jax.Array:
        """Logits `[N, K]` of the one network (every task alike) on `x` `[N, H, W, C]`."""
        del k
        return self._logits(state, x)

    def predict_state(self) -> base.Params:
        """`{"conv": {"layer_i": {"w", "b"}}, "head": FC head}`, the one network."""
        return self.params

    def load_predict_state(self, state: base.Params) -> None:
        """Serves every task with the network `state` (see `predict_state`)."""
        self.params = base.to_device(state)

    def train_state(self) -> base.Params:
        """`{"params", "opt_state", "rng"}`: the network, its RMSProp state and dropout key."""
        return {"params": self.params, "opt_state": self.opt_state, "rng": self.rng}

    def load_train_state(self, state: base.Params) -> None:
        """Resumes from `train_state()`."""
        state = base.to_device(state)
        self.params, self.opt_state, self.rng = state["params"], state["opt_state"], state["rng"]

    def _loss(
        self, params: base.Params, frozen: None, x: jax.Array, y: jax.Array, rng: jax.Array
    ) -> jax.Array:
        del frozen
        return base.cross_entropy(self._logits(params, x, rng), y)

    def start_task(self, t: int, key: jax.Array) -> None:
        """Initialises the network on the first task; later tasks continue training it."""
        init_key, self.rng = jax.random.split(key)
        if t == 0:
            self.params = self._initial_params(init_key)
        self.opt_state = steps.make_optimizer(0.0).init(self.params)

    def _initial_params(self, init_key: jax.Array) -> base.Params:
        """The network `start_task(0, key)` draws from `init_key = split(key)[0]`."""
        gen = layers.generator(init_key)
        return {
            "conv": base.init_plain_convs(gen, self.arch, he=self.he),
            "head": base.init_head(gen, self.arch, self.tasks[0].num_classes, he=self.he),
        }

    def accuracy_at_init(
        self, t: int, first_key: jax.Array, x: jax.Array, y: jax.Array
    ) -> float | None:
        """Accuracy of the network as task 0's start drew it (it has no task parameters)."""
        del t
        params = self._initial_params(jax.random.split(first_key)[0])
        return float(self._accuracy(params, x, y))

    def train_epoch(self, t: int, x: jax.Array, y: jax.Array, lr: float) -> np.ndarray:
        """One epoch on task `t` (the network is the same for every task)."""
        del t
        self.params, self.opt_state, self.rng, losses = self._epoch(
            self.params, self.opt_state, self.rng, None, x, y, lr
        )
        return np.asarray(losses)

    def accuracy(self, k: int, x: jax.Array, y: jax.Array) -> float:
        """Accuracy of the one network on task `k`'s data."""
        del k
        return float(self._accuracy(self.params, x, y))

    def num_parameters(self) -> int:
        """The single network's size (the same for any number of tasks)."""
        return count_params(self.params)
