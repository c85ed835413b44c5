"""Progressive Neural Networks: a frozen column per task, with laterals (docs/protocol.md §10)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from lasem_jax.baselines import base
from lasem_jax.core import layout
from lasem_jax.core.frozen import RunConfig
from lasem_jax.engine import steps
from lasem_jax.networks import layers
from lasem_jax.networks.blocks import BlockNetwork
from lasem_jax.networks.model import count_params
from lasem_jax.task import Task


def lateral_channels(c_in: int, num_prev: int, scale: float) -> int:
    """Channels of the 1x1 lateral reduction: `int(c_in / (scale * (num_prev + 1)))`, at least 1."""
    return max(1, int(c_in / (scale * (num_prev + 1))))


def init_lateral(
    rng: np.random.Generator, kernel: int, c_in: int, c_out: int, channels: int, *, he: bool
) -> base.Params:
    """One lateral adapter from one earlier column into one conv layer.

    Args:
      rng: the initialisation generator.
      kernel: the layer's kernel size `k`.
      c_in: the layer's input channels (those of the earlier column's layer input).
      c_out: the layer's output channels.
      channels: the reduced channels `n` (`lateral_channels`).
      he: He initialisation of the kernels instead of trunc-normal 0.05.

    Returns:
      `{"alpha": [1] (trunc-normal 0.05), "u": {"w": [1, 1, c_in, n], "b": [n]},
      "v": [k, k, n, c_out]}` (the k x k lateral conv has no bias, as in the reference).
    """
    shape = (kernel, kernel, channels, c_out)
    return {
        "alpha": layers.truncated_normal(rng, (1,)),
        "u": layers.init_conv(rng, 1, c_in, channels, he=he),
        "v": layers.he_normal(rng, shape) if he else layers.truncated_normal(rng, shape),
    }


def init_column(
    rng: np.random.Generator,
    arch: BlockNetwork,
    num_prev: int,
    num_classes: int,
    *,
    scale: float,
    he: bool,
) -> base.Params:
    """A fresh column (conv stack, laterals from `num_prev` earlier columns, FC head).

    Returns:
      `{"conv": {"layer_i": {"w", "b"}}, "lateral": {"layer_i": [adapter per earlier column]}
      for i >= 1, "head": FC head with num_classes outputs}`.
    """
    conv = base.init_plain_convs(rng, arch, he=he)
    lateral = {}
    for i in range(1, arch.num_layers):
        layer, c_in = arch.layers[i], arch.in_channels(i)
        n = lateral_channels(c_in, num_prev, scale)
        lateral[layout.layer_key(i)] = [
            init_lateral(rng, layer.kernel, c_in, layer.channels, n, he=he) for _ in range(num_prev)
        ]
    head = base.init_head(rng, arch, num_classes, he=he)
    return {"conv": conv, "lateral": lateral, "head": head}


def apply_lateral(lateral: base.Params, h: jax.Array) -> jax.Array:
    """`conv_kxk(relu(conv_1x1(alpha * h) + b), v)`: `[B, H, W, c_in]` -> `[B, H, W, c_out]`."""
    reduced = jax.nn.relu(
        layers.conv2d(lateral["alpha"] * h, lateral["u"]["w"]) + lateral["u"]["b"]
    )
    return layers.conv2d(reduced, lateral["v"])


def column_stack(
    arch: BlockNetwork,
    column: base.Params,
    prev_inputs: Sequence[list[jax.Array]],
    x: jax.Array,
) -> tuple[jax.Array, list[jax.Array]]:
    """Runs one column's conv stack on `x`, reading the earlier columns at every layer i >= 1.

    Args:
      arch: the architecture of every column.
      column: the column's parameters (`init_column`).
      prev_inputs: per earlier column j, the input `[B, H_i, W_i, C_i]` of each of its layers
        (the second output of this function for column j).
      x: `[B, H, W, C]` images.

    Returns:
      Flattened features `[B, F]` and the input of each of this column's layers.
    """

    def layer_fn(i: int, h: jax.Array) -> jax.Array:
        conv = column["conv"][layout.layer_key(i)]
        z = layers.conv2d(h, conv["w"]) + conv["b"]
        if i > 0:
            for lateral, inputs in zip(
                column["lateral"][layout.layer_key(i)], prev_inputs, strict=True
            ):
                z = z + apply_lateral(lateral, inputs[i])
        return jax.nn.relu(z)

    return base.conv_stack(arch, x, layer_fn)


def progressive_logits(
    arch: BlockNetwork,
    frozen: Sequence[base.Params],
    column: base.Params,
    x: jax.Array,
    rng: jax.Array | None = None,
) -> jax.Array:
    """Logits `[B, K]` of `column` on `x` `[B, H, W, C]`, on top of the earlier columns `frozen`.

    Each earlier column j runs on `x` reading columns < j; with `rng`, dropout in the head.
    """
    prev_inputs: list[list[jax.Array]] = []
    for earlier in frozen:
        _, inputs = column_stack(arch, earlier, prev_inputs, x)
        prev_inputs.append(inputs)
    feats, _ = column_stack(arch, column, prev_inputs, x)
    return layers.apply_head(column["head"], feats, dropout_rng=rng)


class ProgNN(base.Baseline):
    """Progressive Neural Network (Rusu et al. 2016) as in the reference (docs/protocol.md §10).

    Task t gets a new column of the full architecture (conv stack and its own FC head, so tasks
    may differ in classes). Each conv layer i >= 1 of column t adds, before its ReLU, one
    lateral adapter per earlier column j: `alpha_j * h_j` (h_j = column j's input of layer i),
    a 1x1 conv to `lateral_channels(...)` channels + bias + ReLU, then a k x k conv without bias.
    Layer 0 and the FC layers have no laterals. Only column t and its laterals are trained;
    earlier columns enter the jitted epoch as non-differentiated inputs and never change.
    Task k is evaluated with column k. Simplifications: the number of reduced channels is at
    least 1 (the reference can create 0-channel adapters), and identity shortcuts are added
    after the ReLU as for every method here (`base.conv_stack`), not before it.

    Attributes:
      columns: the columns of the tasks started so far, in task order.
    """

    name = "prognn"

    def __init__(self, config: RunConfig, tasks: list[Task]) -> None:
        super().__init__(config, tasks)
        self.scale = float(config.prognn.dim_reduction_scale)
        if self.scale <= 0:
            raise ValueError(f"prognn.dim_reduction_scale must be > 0, got {self.scale}.")
        self.columns: list[base.Params] = []
        self.opt_state: Any = None
        self.rng: jax.Array | None = None
        self._epoch = base.make_epoch(self._loss, int(config.train.batch_size))
        self._accuracy = base.make_accuracy(self._logits, int(config.train.eval_chunk))

    def _logits(self, params: tuple[list[base.Params], base.Params], x: jax.Array) -> jax.Array:
        frozen, column = params
        return progressive_logits(self.arch, frozen, column, x)

    def _loss(
        self,
        params: base.Params,
        frozen: list[base.Params],
        x: jax.Array,
        y: jax.Array,
        rng: jax.Array,
    ) -> jax.Array:
        return base.cross_entropy(progressive_logits(self.arch, frozen, params, x, rng), y)

    def start_task(self, t: int, key: jax.Array) -> None:
        """Adds column `t`, with laterals from the `t` earlier columns, and its optimiser."""
        init_key, self.rng = jax.random.split(key)
        column = init_column(
            layers.generator(init_key),
            self.arch,
            t,
            self.tasks[t].num_classes,
            scale=self.scale,
            he=self.he,
        )
        self.columns = [*self.columns[:t], column]
        self.opt_state = steps.make_optimizer(0.0).init(column)

    def train_epoch(self, t: int, x: jax.Array, y: jax.Array, lr: float) -> np.ndarray:
        """One epoch on task `t`, training column `t` only."""
        self.columns[t], self.opt_state, self.rng, losses = self._epoch(
            self.columns[t], self.opt_state, self.rng, self.columns[:t], x, y, lr
        )
        return np.asarray(losses)

    def accuracy(self, k: int, x: jax.Array, y: jax.Array) -> float:
        """Accuracy of column `k` (reading columns < k) on task `k`'s data."""
        return float(self._accuracy((self.columns[:k], self.columns[k]), x, y))

    def num_parameters(self) -> int:
        """Every column's parameters, laterals and heads included."""
        return count_params(self.columns)

    def predict(self, state: base.Params, k: int, x: jax.Array) -> jax.Array:
        """Logits `[N, K_k]` of column `k` on top of columns `< k`."""
        columns = state["columns"]
        return progressive_logits(self.arch, columns[:k], columns[k], x)

    def predict_state(self) -> base.Params:
        """`{"columns": [column per task]}` (see `init_column`)."""
        return {"columns": list(self.columns)}

    def load_predict_state(self, state: base.Params) -> None:
        """Serves the tasks of `state` (see `predict_state`)."""
        self.columns = list(base.to_device(state["columns"]))

    def train_state(self) -> base.Params:
        """`predict_state()` plus the current column's `opt_state` and the dropout `rng`."""
        return {**self.predict_state(), "opt_state": self.opt_state, "rng": self.rng}

    def load_train_state(self, state: base.Params) -> None:
        """Resumes from `train_state()`."""
        self.load_predict_state(state)
        self.opt_state, self.rng = base.to_device((state["opt_state"], state["rng"]))
