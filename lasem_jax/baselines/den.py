"""Dynamically Expandable Networks (DEN, Yoon et al. ICLR 2018) re-implemented for conv nets."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lasem_jax.baselines import base, den_math
from lasem_jax.core import layout
from lasem_jax.core.frozen import RunConfig
from lasem_jax.engine import steps
from lasem_jax.networks import layers
from lasem_jax.task import Task


class DEN(base.Baseline):
    """One growing conv network with per-task heads and per-task channel masks (DEN).

    Task 0 trains the whole network with L1 + L2 (`config.den.l1`, `l2`). A later task with E
    epochs per task (h = max(1, E // 2)) runs:

    1. epoch 1, selection: only the new head trains, with L1; then the units connected to it
       are selected layer by layer from the top (`den_math.connected_units`).
    2. epochs 2..h, selective retraining: only the kernels between selected units (and the
       head) train, with L2 and `config.den.reg` * ||W - W_before_task||^2 / 2.
    3. after epoch h (if h < E), expansion: if the training cross-entropy is above
       `loss_threshold`, every conv layer gets `expansion_size` new channels; epochs h+1..E
       train only the new units (and the head) with group lasso (`group_lasso`, one group per
       unit: incoming kernel and bias) and L2. Otherwise selective retraining goes on.
    4. after epoch E: new units with group norm below `sparsity_thresholds[1]` are removed,
       then old units whose incoming weights and bias moved by more than
       `config.den.split_threshold` (L2) are split: the copy keeps the new values for the new
       task, the original gets its old values back for the old tasks.

    Every task k keeps a `[C_i]` channel mask per layer (`masks[k]`): the channels that existed
    when it finished (its timestamp, `timestamps[k]`), minus the originals it replaced by
    splitting. Channels added later are masked to zero for it, so only drift of its own units
    (bounded by the split threshold) can change its outputs.

    Simplifications (documented departures from the paper): units are channels; selection keeps
    per layer the units holding `sparsity_thresholds[0]` of the L1 mass of their connections
    (no exact-zero breadth-first search); new units receive no connections into old units and
    expansion adds exactly `expansion_size` units per layer (no search for the number); group
    lasso is a subgradient penalty followed by one thresholding, not a proximal method; no
    retraining after the split (the split preserves the new task's outputs exactly); the
    optimiser is reset at each phase change; the expansion test uses the cross-entropy on the
    whole training set (no dropout, no penalties). Identity shortcuts (ResNet) are not
    supported. Penalties are sums (L2: `l2 * sum(w^2) / 2` over every trainable weight); with
    the reference's l2 = 0.01 (docs/protocol.md §10) a small network (digits, width 0.25,
    16 epochs) collapses to chance under RMSProp, while l2 <= 1e-4 learns.

    Attributes:
      widths: current channel count per conv layer.
      convs: `{"layer_i": {"w": [k, k, C_{i-1}, C_i], "b": [C_i]}}`, the one growing network.
      heads: every task's FC head (first weight `[H * W * C_{L-1}, n]`, rows of channels a
        task does not use are ignored).
      masks: per task, per layer, `[C_i]` bool, the channels the task uses.
      timestamps: per finished task, the channel counts when it finished.
    """

    name = "den"

    def __init__(self, config: RunConfig, tasks: list[Task]) -> None:
        super().__init__(config, tasks)
        if self.arch.skips:
            raise ValueError(
                f"den grows every layer independently, which identity shortcuts forbid; "
                f"{self.arch.name} has shortcuts {self.arch.skips}. Use a plain architecture."
            )
        self.hp = config.den
        self.spatial = self.arch.feature_shape[0] * self.arch.feature_shape[1]
        self.widths = [layer.channels for layer in self.arch.layers]
        self.convs: base.Params = {}
        self.heads: list[base.Params] = []
        self.masks: list[list[np.ndarray]] = []
        self.timestamps: list[list[int]] = []
        self.rng: jax.Array | None = None
        self.gen: np.random.Generator | None = None
        self.opt_state: Any = None
        self.prev: base.Params = {}
        self.old_widths = list(self.widths)
        self.epoch, self.expanded, self.phase = 0, False, ""
        self.selected: list[np.ndarray] = []
        loss = functools.partial(den_math.den_loss, self.arch)
        self._epoch = base.make_epoch(loss, int(config.train.batch_size))
        self._accuracy = base.make_accuracy(self._logits, int(config.train.eval_chunk))
        chunk = int(config.train.eval_chunk)
        self._train_loss = jax.jit(
            lambda p, x, y: den_math.chunked_cross_entropy(
                lambda xb: self._logits(p, xb), x, y, chunk=chunk
            )
        )

    def _logits(self, params: tuple, x: jax.Array) -> jax.Array:
        convs, head, masks = params
        return den_math.den_logits(self.arch, convs, head, masks, x)

    def _task_params(self, k: int) -> tuple:
        masks = tuple(jnp.asarray(m, jnp.float32) for m in self.masks[k])
        return self.convs, self.heads[k], masks

    def start_task(self, t: int, key: jax.Array) -> None:
        """Adds task `t`'s head and mask (all current channels) and snapshots the network."""
        init_key, self.rng = jax.random.split(key)
        self.gen = layers.generator(init_key)
        if t == 0:
            self.convs = base.init_plain_convs(self.gen, self.arch, he=self.he)
        fan_in = self.spatial * self.widths[-1]
        head = layers.init_head(
            self.gen, fan_in, self.arch.fc_hidden, self.tasks[t].num_classes, he=self.he
        )
        self.heads.append(head)
        self.masks.append([np.ones(c, bool) for c in self.widths])
        self.prev = self.convs
        self.old_widths = list(self.widths)
        self.epoch, self.expanded, self.phase = 0, False, ""
        self.selected = []

    def _frozen(self, phase: str) -> dict:
        """The gradient masks and penalty weights of `phase` (see the class docstring)."""
        ones = [np.ones(c, np.float32) for c in self.widths]
        if phase == "full":
            units_in, units_out = ones, ones
        elif phase == "head":
            units_in = units_out = [0 * m for m in ones]
        elif phase == "selective":
            units_out = [m.astype(np.float32) for m in self.selected]
            units_in = units_out
        else:
            units_out = [
                (np.arange(c) >= old).astype(np.float32)
                for c, old in zip(self.widths, self.old_widths, strict=True)
            ]
            units_in = ones
        units_in = [np.ones(self.arch.input_shape[2], np.float32), *units_in]
        conv_grad = {
            layout.layer_key(i): {
                "w": jnp.asarray(np.outer(units_in[i], out))[None, None],
                "b": jnp.asarray(out),
            }
            for i, out in enumerate(units_out)
        }
        grad = {"convs": conv_grad, "head": jax.tree.map(jnp.ones_like, self.heads[-1])}
        hp = self.hp
        coef = {
            "l1": hp.l1 if phase in ("full", "head") else 0.0,
            "l2": 0.0 if phase == "head" else hp.l2,
            "drift": hp.reg if phase == "selective" else 0.0,
            "gl": hp.group_lasso if phase == "expand" else 0.0,
        }
        prev = self.prev if phase == "selective" else self.convs
        new = units_out if phase == "expand" else [0 * m for m in ones]
        return {
            "grad": grad,
            "masks": self._task_params(len(self.heads) - 1)[2],
            "prev": {name: conv["w"] for name, conv in prev.items()},
            "new": tuple(jnp.asarray(m) for m in new),
            "coef": {k: jnp.float32(v) for k, v in coef.items()},
        }

    def train_epoch(self, t: int, x: jax.Array, y: jax.Array, lr: float) -> np.ndarray:
        """One epoch of task `t`'s current phase; grows, prunes and splits at phase ends."""
        self.epoch += 1
        epochs = int(self.config.train.epochs_per_task)
        half = max(1, epochs // 2)
        if t == 0:
            phase = "full"
        elif self.epoch == 1:
            phase = "head"
        else:
            phase = "expand" if self.expanded else "selective"
        params = {"convs": self.convs, "head": self.heads[-1]}
        if phase != self.phase:
            self.phase, self.opt_state = phase, steps.make_optimizer(0.0).init(params)
        params, self.opt_state, self.rng, losses = self._epoch(
            params, self.opt_state, self.rng, self._frozen(phase), x, y, lr
        )
        self.convs, self.heads[-1] = params["convs"], params["head"]
        if t > 0 and self.epoch == 1:
            keep_mass = float(self.hp.sparsity_thresholds[0])
            self.selected = den_math.connected_units(
                self.convs, self.heads[-1], self.spatial, keep_mass
            )
        if t > 0 and self.epoch == half < epochs:
            train_loss = float(self._train_loss(self._task_params(t), x, y))
            if train_loss > float(self.hp.loss_threshold):
                self._expand()
        if t > 0 and self.epoch == epochs:
            if self.expanded:
                self._prune()
            self._split()
        return np.asarray(losses)

    def _expand(self) -> None:
        """Adds `expansion_size` channels to every conv layer (zero effect until trained)."""
        e = int(self.hp.expansion_size)
        c_in = self.arch.input_shape[2]
        for i, layer in enumerate(self.arch.layers):
            new = layers.init_conv(self.gen, layer.kernel, c_in, e, he=self.he)
            self.convs, self.heads = den_math.expand_layer(
                self.convs, self.heads, i, new, self.spatial
            )
            self.widths[i] += e
            c_in = self.widths[i]
            for k, masks in enumerate(self.masks):
                masks[i] = np.concatenate([masks[i], np.full(e, k == len(self.masks) - 1)])
        self.expanded = True

    def _prune(self) -> None:
        """Removes the new units whose group norm is below `sparsity_thresholds[1]`."""
        threshold = float(self.hp.sparsity_thresholds[1])
        for i in range(len(self.widths)):
            is_new = np.arange(self.widths[i]) >= self.old_widths[i]
            self.convs, self.heads, keep = den_math.prune_units(
                self.convs, self.heads, i, is_new, threshold, self.spatial
            )
            self.widths[i] = len(keep)
            self.masks = [[m if j != i else m[keep] for j, m in enumerate(ms)] for ms in self.masks]

    def _split(self) -> None:
        """Splits the old units that drifted beyond `split_threshold` (see the class docstring)."""
        for i in range(len(self.widths)):
            prev = self.prev[layout.layer_key(i)]
            drift = den_math.unit_drift(self.convs[layout.layer_key(i)], prev)
            drifted = np.flatnonzero(drift > float(self.hp.split_threshold))
            if not len(drifted):
                continue
            self.convs, self.heads = den_math.split_units(
                self.convs, self.heads, i, drifted, prev, self.spatial
            )
            self.widths[i] += len(drifted)
            for k, masks in enumerate(self.masks):
                current = k == len(self.masks) - 1
                grown = np.concatenate([masks[i], np.full(len(drifted), current)])
                if current:
                    grown[drifted] = False
                masks[i] = grown

    def accuracy(self, k: int, x: jax.Array, y: jax.Array) -> float:
        """Accuracy of task `k` with its head and channel mask."""
        return float(self._accuracy(self._task_params(k), x, y))

    def end_task(self, t: int) -> None:
        """Records task `t`'s timestamp (channel count per layer when it finished)."""
        del t
        self.timestamps.append(list(self.widths))

    def num_parameters(self) -> int:
        """Weights some task reads through its channel masks (`den_math.read_parameter_count`).

        Zero rows added to old heads and weights between channels no single task uses are not
        counted, nor are the bool masks.
        """
        return den_math.read_parameter_count(self.convs, self.heads, self.masks, self.spatial)

    def predict(self, state: base.Params, k: int, x: jax.Array) -> jax.Array:
        """Logits `[N, K_k]` of task `k`: its head and channel masks (see `predict_state`)."""
        masks = tuple(jnp.asarray(m, jnp.float32) for m in state["masks"][k])
        return den_math.den_logits(self.arch, state["convs"], state["heads"][k], masks, x)

    def predict_state(self) -> base.Params:
        """The network, every head and every task's channel masks.

        `{"convs": {"layer_i": {"w", "b"}}, "heads": [head per task], "masks": per task, per
        layer, a `[C_i]` bool mask}`.
        """
        masks = [list(task_masks) for task_masks in self.masks]
        return {"convs": self.convs, "heads": list(self.heads), "masks": masks}

    def load_predict_state(self, state: base.Params) -> None:
        """Serves the tasks of `state` (see `predict_state`)."""
        self.convs = base.to_device(state["convs"])
        self.heads = list(base.to_device(state["heads"]))
        self.masks = [[np.asarray(m, bool) for m in masks] for masks in state["masks"]]
        self.widths = [
            int(self.convs[layout.layer_key(i)]["b"].shape[0]) for i in range(len(self.widths))
        ]

    def train_state(self) -> base.Params:
        """`predict_state()` plus the growth bookkeeping and the current task's phase.

        Adds `widths`, `timestamps`, `rng`, `gen` (the NumPy generator's state, Python ints),
        `opt_state`, `prev` (the network when the task started), `old_widths`, `epoch`,
        `expanded`, `phase` and `selected` (`[C_i]` bool per layer, or empty).
        """
        return {
            **self.predict_state(),
            "widths": list(self.widths),
            "timestamps": [list(ts) for ts in self.timestamps],
            "rng": self.rng,
            "gen": None if self.gen is None else self.gen.bit_generator.state,
            "opt_state": self.opt_state,
            "prev": self.prev,
            "old_widths": list(self.old_widths),
            "epoch": self.epoch,
            "expanded": self.expanded,
            "phase": self.phase,
            "selected": list(self.selected),
        }

    def load_train_state(self, state: base.Params) -> None:
        """Resumes from `train_state()`."""
        self.load_predict_state(state)
        self.widths, self.old_widths = list(state["widths"]), list(state["old_widths"])
        self.timestamps = [list(ts) for ts in state["timestamps"]]
        self.rng, self.opt_state, self.prev = base.to_device(
            (state["rng"], state["opt_state"], state["prev"])
        )
        self.gen = None
        if state["gen"] is not None:
            self.gen = np.random.default_rng()
            self.gen.bit_generator.state = state["gen"]
        self.epoch, self.expanded, self.phase = state["epoch"], state["expanded"], state["phase"]
        self.selected = [np.asarray(m, bool) for m in state["selected"]]
