"""Pure pieces of DEN on conv nets: masked forward, loss, unit selection, growth, pruning, split."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lasem_jax.baselines import base
from lasem_jax.core import layout
from lasem_jax.networks import layers
from lasem_jax.networks.blocks import BlockNetwork

Array = jax.Array
Heads = list[base.Params]


def head_input_key(head: base.Params) -> str:
    """Name of the head layer that reads the conv features (`fc_0`, or `out` without hidden)."""
    return "fc_0" if "fc_0" in head else "out"


def den_logits(
    arch: BlockNetwork,
    convs: base.Params,
    head: base.Params,
    masks: Sequence[Array],
    x: Array,
    rng: Array | None = None,
) -> Array:
    """Logits `[B, K]` of one task: the growing network with only the task's channels active.

    Args:
      arch: the architecture (pools only; its channel counts are ignored).
      convs: `{"layer_i": {"w": [k, k, C_{i-1}, C_i], "b": [C_i]}}`, current widths.
      head: the task's FC head; its first weight has `H * W * C_{L-1}` rows.
      masks: `[C_i]` per layer, 1 for the channels the task uses, 0 for the others.
      x: `[B, H, W, C]` images.
      rng: dropout key (training) or None (evaluation).
    """

    def layer_fn(i: int, h: Array) -> Array:
        conv = convs[layout.layer_key(i)]
        return jax.nn.relu(layers.conv2d(h, conv["w"]) + conv["b"]) * masks[i]

    feats, _ = base.conv_stack(arch, x, layer_fn)
    return layers.apply_head(head, feats, dropout_rng=rng)


def unit_norms(conv: base.Params) -> Array:
    """`[C]` L2 norm of every unit's group: its incoming kernel `[k, k, c_in, C]` and bias `[C]`."""
    return jnp.sqrt(jnp.sum(conv["w"] ** 2, axis=(0, 1, 2)) + conv["b"] ** 2 + 1e-12)


def den_loss(
    arch: BlockNetwork,
    params: base.Params,
    frozen: dict,
    x: Array,
    y: Array,
    rng: Array,
) -> Array:
    """Cross-entropy plus DEN's penalties, with gradients only where `frozen["grad"]` is 1.

    Args:
      arch: the architecture.
      params: `{"convs": ..., "head": ...}` (see `den_logits`).
      frozen: `grad` (0/1 tree like `params`: what trains), `masks` (the task's `[C_i]`
        channel masks), `prev` (`{"layer_i": [k, k, C_{i-1}, C_i]}` kernels the drift penalty
        pulls towards), `new` (`[C_i]` per layer, 1 for the units under group lasso) and `coef`
        (scalars `l1`, `l2` on trainable weights, `drift`, `gl`).
      x: `[B, H, W, C]` images.
      y: `[B]` labels.
      rng: dropout key.
    """
    grad, coef = frozen["grad"], frozen["coef"]
    p = jax.tree.map(lambda v, m: m * v + (1 - m) * jax.lax.stop_gradient(v), params, grad)
    logits = den_logits(arch, p["convs"], p["head"], frozen["masks"], x, rng)
    weights = [
        grad[part][name]["w"] * p[part][name]["w"] for part in ("convs", "head") for name in p[part]
    ]
    l1 = sum(jnp.sum(jnp.abs(w)) for w in weights)
    l2 = sum(jnp.sum(w**2) for w in weights) / 2
    drift = sum(
        jnp.sum(grad["convs"][name]["w"] * (p["convs"][name]["w"] - prev) ** 2)
        for name, prev in frozen["prev"].items()
    )
    group = sum(
        jnp.sum(new * unit_norms(p["convs"][layout.layer_key(i)]))
        for i, new in enumerate(frozen["new"])
    )
    reg = coef["l1"] * l1 + coef["l2"] * l2 + coef["drift"] * drift / 2 + coef["gl"] * group
    return base.cross_entropy(logits, y) + reg


def chunked_cross_entropy(
    logits_fn: Callable[[Array], Array], x: Array, y: Array, *, chunk: int
) -> Array:
    """Mean cross-entropy of `logits_fn(xb) -> [b, K]` on `x` `[N, ...]`, `y` `[N]`, by chunks."""
    n = x.shape[0]
    num_chunks = -(-n // chunk)
    pad = num_chunks * chunk - n
    xs = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1)).reshape(num_chunks, chunk, *x.shape[1:])
    ys = jnp.pad(y, (0, pad), constant_values=-1).reshape(num_chunks, chunk)

    def total(batch: tuple[Array, Array]) -> Array:
        xb, yb = batch
        ce = optax.softmax_cross_entropy_with_integer_labels(logits_fn(xb), jnp.maximum(yb, 0))
        return jnp.sum(jnp.where(yb >= 0, ce, 0.0))

    return jnp.sum(jax.lax.map(total, (xs, ys))) / n


def select_units(importance: np.ndarray, keep_mass: float) -> np.ndarray:
    """`[C]` bool: the fewest units, most important first, holding `keep_mass` of the total."""
    order = np.argsort(-importance, kind="stable")
    cumulative = np.cumsum(importance[order])
    count = min(int(np.searchsorted(cumulative, keep_mass * cumulative[-1])) + 1, len(order))
    selected = np.zeros(len(importance), bool)
    selected[order[:count]] = True
    return selected


def connected_units(
    convs: base.Params, head: base.Params, spatial: int, keep_mass: float
) -> list[np.ndarray]:
    """Units connected to the new head, layer by layer from the top (DEN's breadth-first search).

    A last-layer unit's importance is the L1 norm of its head rows; a lower unit's is the L1
    norm of its outgoing weights into the selected units above. Each layer keeps the units
    holding `keep_mass` of its importance (`select_units`).

    Args:
      convs: `{"layer_i": {"w": [k, k, C_{i-1}, C_i], ...}}`.
      head: the new task's head (first weight `[spatial * C_{L-1}, n]`).
      spatial: `H * W` of the last conv layer's output.
      keep_mass: fraction of the importance mass kept per layer.

    Returns:
      `[C_i]` bool per layer.
    """
    w = np.abs(np.asarray(head[head_input_key(head)]["w"]))
    importance = w.reshape(spatial, -1, w.shape[-1]).sum(axis=(0, 2))
    selected = [select_units(importance, keep_mass)]
    for i in range(len(convs) - 1, 0, -1):
        kernel = np.abs(np.asarray(convs[layout.layer_key(i)]["w"]))[..., selected[0]]
        selected.insert(0, select_units(kernel.sum(axis=(0, 1, 3)), keep_mass))
    return selected


def _update_consumers(
    convs: base.Params, heads: Heads, layer: int, fn: Callable[[Array], Array], spatial: int
) -> tuple[base.Params, Heads]:
    """Applies `fn` (on `[..., C, n]`, channels on axis -2) to the weights reading `layer`."""
    nxt = layout.layer_key(layer + 1)
    if nxt in convs:
        return {**convs, nxt: {**convs[nxt], "w": fn(convs[nxt]["w"])}}, heads

    def fix(head: base.Params) -> base.Params:
        key = head_input_key(head)
        w = head[key]["w"]
        rows = fn(w.reshape(spatial, -1, w.shape[-1])).reshape(-1, w.shape[-1])
        return {**head, key: {**head[key], "w": rows}}

    return convs, [fix(head) for head in heads]


def gather_units(
    convs: base.Params, heads: Heads, layer: int, index: np.ndarray, spatial: int
) -> tuple[base.Params, Heads]:
    """Keeps (or repeats) the units `index` `[C']` of `layer`: its kernel, bias and consumers."""
    name = layout.layer_key(layer)
    conv = {"w": convs[name]["w"][..., index], "b": convs[name]["b"][index]}
    return _update_consumers(
        {**convs, name: conv}, heads, layer, lambda w: jnp.take(w, index, axis=-2), spatial
    )


def expand_layer(
    convs: base.Params, heads: Heads, layer: int, new: base.Params, spatial: int
) -> tuple[base.Params, Heads]:
    """Appends units `new` (`{"w": [k, k, C_{i-1}, e], "b": [e]}`) to `layer`.

    The weights from the new units into the existing units of the next layer, and the head
    rows of the new units, start at zero: the expansion changes no task's output.
    """
    name = layout.layer_key(layer)
    grown = {key: jnp.concatenate([convs[name][key], new[key]], axis=-1) for key in ("w", "b")}
    e = new["b"].shape[0]

    def zeros(w: Array) -> Array:
        return jnp.concatenate([w, jnp.zeros((*w.shape[:-2], e, w.shape[-1]), w.dtype)], axis=-2)

    return _update_consumers({**convs, name: grown}, heads, layer, zeros, spatial)


def prune_units(
    convs: base.Params, heads: Heads, layer: int, is_new: np.ndarray, threshold: float, spatial: int
) -> tuple[base.Params, Heads, np.ndarray]:
    """Removes the new units of `layer` (`is_new` `[C]` bool) whose group norm is below threshold.

    Returns:
      The pruned convs and heads, and the `[C']` indices of the units kept.
    """
    norms = np.asarray(unit_norms(convs[layout.layer_key(layer)]))
    keep = np.flatnonzero(~is_new | (norms >= threshold))
    convs, heads = gather_units(convs, heads, layer, keep, spatial)
    return convs, heads, keep


def unit_drift(conv: base.Params, prev: base.Params) -> np.ndarray:
    """`[C_prev]` L2 distance of each old unit's incoming weights and bias from `prev`.

    `prev` (`{"w": [k, k, c_in_prev, C_prev], "b": [C_prev]}`) holds the units before the task;
    they are the leading channels of `conv`.
    """
    c_in, c_out = prev["w"].shape[2:]
    dw = conv["w"][:, :, :c_in, :c_out] - prev["w"]
    db = conv["b"][:c_out] - prev["b"]
    return np.sqrt(np.asarray(jnp.sum(dw**2, axis=(0, 1, 2)) + db**2))


def split_units(
    convs: base.Params,
    heads: Heads,
    layer: int,
    drifted: np.ndarray,
    prev: base.Params,
    spatial: int,
) -> tuple[base.Params, Heads]:
    """Duplicates the old units `drifted` (int `[D]`) of `layer` and restores the originals.

    The copies, appended at the end, keep the current (drifted) values and outgoing weights,
    for the new task; the originals get their values from `prev` (as `unit_drift`) back, for
    the old tasks. Masking the originals for the new task and the copies for the old tasks
    leaves the new task's output unchanged and restores the old units exactly.
    """
    index = np.concatenate([np.arange(convs[layout.layer_key(layer)]["b"].shape[0]), drifted])
    convs, heads = gather_units(convs, heads, layer, index, spatial)
    name, c_in = layout.layer_key(layer), prev["w"].shape[2]
    w = convs[name]["w"].at[:, :, :c_in, drifted].set(prev["w"][..., drifted])
    b = convs[name]["b"].at[drifted].set(prev["b"][drifted])
    return {**convs, name: {"w": w, "b": b}}, heads


def read_parameter_count(
    convs: base.Params, heads: Heads, masks: Sequence[Sequence[np.ndarray]], spatial: int
) -> int:
    """Scalars of `convs` and `heads` that some task's prediction reads through its masks.

    Task k reads, in layer i, the kernel entries from its channels of layer i - 1 (every input
    channel for i = 0) into its channels of layer i and the biases of the latter; in its own
    head, the first weight's rows of its last-layer channels and every other head tensor.

    Args:
      convs: `{"layer_i": {"w": [k, k, C_{i-1}, C_i], "b": [C_i]}}`.
      heads: every task's head (first weight `[spatial * C_{L-1}, n]`).
      masks: per task, per layer, the `[C_i]` bool channels it uses.
      spatial: `H * W` of the last conv layer's output.
    """
    total = 0
    for i in range(len(convs)):
        w = convs[layout.layer_key(i)]["w"]
        read, biases = np.zeros(w.shape[2:], bool), np.zeros(w.shape[3], bool)
        for task_masks in masks:
            inputs = task_masks[i - 1] if i > 0 else np.ones(w.shape[2], bool)
            read |= np.outer(inputs, task_masks[i])
            biases |= task_masks[i]
        total += w.shape[0] * w.shape[1] * int(read.sum()) + int(biases.sum())
    for head, task_masks in zip(heads, masks, strict=True):
        first = head[head_input_key(head)]["w"]
        rest = sum(np.size(v) for v in jax.tree.leaves(head)) - np.size(first)
        total += spatial * int(np.sum(task_masks[-1])) * first.shape[-1] + rest
    return total
