"""Building blocks: TF1-compatible initialisers, conv, pooling, and the Flax FC head.

The initialisers draw with NumPy (see `generator`) in a fixed order, so results match earlier
runs; the convolution, pooling and TF1's SAME transposed convolution are hand-written where
neither Flax nor `lax` has the TF1 semantics or the CPU speed (each says why).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lasem_jax.native import conv as native_conv

Array = jax.Array
_CONV_DIMS = ("NHWC", "HWIO", "NHWC")


def generator(key: Array) -> np.random.Generator:
    """A NumPy generator seeded from a JAX PRNG key, for parameter initialisation.

    Initial values are drawn with NumPy: `jax.random` compiles a program per tensor shape
    (1-1.6 s each on CPU), which made building a small model take ~15 s. Same key, same values.
    """
    return np.random.default_rng(np.asarray(jax.random.key_data(key), dtype=np.uint32))


def truncated_normal(rng: np.random.Generator, shape: Sequence[int], *, std: float = 0.05) -> Array:
    """TF1 `truncated_normal(stddev=std)`: normals redrawn beyond 2 std (docs/protocol.md §2.1)."""
    values = rng.standard_normal(tuple(shape))
    outside = np.abs(values) > 2.0
    while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2.0
    return jnp.asarray(std * values, jnp.float32)


def he_normal(rng: np.random.Generator, shape: Sequence[int]) -> Array:
    """He initialisation: truncated normal, std `sqrt(2 / fan_in)`, fan_in = prod(shape[:-1])."""
    fan_in = math.prod(shape[:-1]) if len(shape) > 1 else shape[0]
    return truncated_normal(rng, shape, std=math.sqrt(2.0 / fan_in))


def glorot_uniform(rng: np.random.Generator, shape: Sequence[int]) -> Array:
    """TF1's default initialiser for `get_variable` with fan rules of docs/protocol.md §2.1.

    1-D: fan_in = fan_out = n; 2-D: (rows, cols); >= 3-D: receptive field = product of all but
    the last two dims, fan_in = dim[-2] * rf, fan_out = dim[-1] * rf.
    """
    shape = tuple(shape)
    if len(shape) == 1:
        fan_in = fan_out = shape[0]
    else:
        rf = math.prod(shape[:-2])
        fan_in, fan_out = shape[-2] * rf, shape[-1] * rf
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return jnp.asarray(rng.uniform(-limit, limit, shape), jnp.float32)


def init_dense(
    rng: np.random.Generator, fan_in: int, fan_out: int, *, he: bool = False
) -> dict[str, Array]:
    """Plain weight `[fan_in, fan_out]` (trunc-normal 0.05, or He), bias 0.2.

    As the reference code (docs/protocol.md §2.1).
    """
    shape = (fan_in, fan_out)
    w = he_normal(rng, shape) if he else truncated_normal(rng, shape)
    return {"w": w, "b": jnp.full((fan_out,), 0.2, jnp.float32)}


def init_conv(
    rng: np.random.Generator, kernel: int, c_in: int, c_out: int, *, he: bool = False
) -> dict[str, Array]:
    """Plain conv weight `[k, k, c_in, c_out]`, bias `[c_out]` 0.2 (docs/protocol.md §2.1, §2.5)."""
    shape = (kernel, kernel, c_in, c_out)
    w = he_normal(rng, shape) if he else truncated_normal(rng, shape)
    return {"w": w, "b": jnp.full((c_out,), 0.2, jnp.float32)}


def conv2d(x: Array, w: Array, *, impl: str | None = None) -> Array:
    """Stride-1 SAME conv: `x` `[N, H, W, Cin]`, `w` `[k, k, Cin, Cout]` -> `[N, H, W, Cout]`.

    Args:
      x: images.
      w: kernel.
      impl: `xla` (XLA's convolution, differentiated by JAX), `cpu` (the same forward with a
        hand-written gradient), `onednn` (oneDNN's three convolutions through XLA's FFI, the
        `native` extra; `lasem_jax.native.conv`) or None: the process's path for this size,
        `lasem_jax.native.conv.path_for` (`onednn` on CPU where it is installed, but `cpu`
        for tiny convolutions, else `cpu` on CPU, `xla` elsewhere; $LASEM_JAX_CONV
        overrides). XLA:CPU runs the convolutions JAX
        derives for a kernel gradient inside a loop (our per-epoch `lax.scan`) 16-100x slower
        than `cpu` (jax-ml/jax#12868); `cpu` computes the input gradient as a forward
        convolution and the kernel gradient as `k*k` matmuls.
    """
    impl = impl or native_conv.path_for(x.shape, w.shape)
    if impl == "xla":
        return _conv(x, w)
    if impl == "onednn":
        return native_conv.conv(x, w)
    if impl != "cpu":
        raise ValueError(f"Unknown conv impl {impl!r}; use one of {native_conv.PATHS}.")
    return _conv_cpu(x, w)


def _conv(x: Array, w: Array, padding: Any = "SAME") -> Array:
    return jax.lax.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=_CONV_DIMS)


@jax.custom_vjp
def _conv_cpu(x: Array, w: Array) -> Array:
    return _conv(x, w)


def _conv_cpu_fwd(x: Array, w: Array) -> tuple[Array, tuple[Array, Array]]:
    return _conv(x, w), (x, w)


def _conv_cpu_bwd(res: tuple[Array, Array], g: Array) -> tuple[Array, Array]:
    """Input gradient: a convolution of `g` with the flipped, in/out-swapped kernel.

    Kernel gradient: with both `x` (SAME-padded) and `g` (padded after) flattened to rows of
    an `[N*Hp*Wp, C]` matrix, the offset `(i, j)` of the window is a row offset `i*Wp + j`, so
    `dw[i, j] = x_rows[i*Wp + j :][:R].T @ g_rows[:R]`: contiguous slices and one matmul each.
    Rows of `g` at the padding are zero, so the wrap-around rows contribute nothing.
    """
    x, w = res
    k, c_in, c_out = w.shape[0], w.shape[2], w.shape[3]
    n, h, wd = x.shape[:3]
    lo, hi = (k - 1) // 2, k // 2
    flipped = jnp.flip(w, (0, 1)).transpose(0, 1, 3, 2)
    dx = _conv(g, flipped, [(hi, lo), (hi, lo)])  # SAME pads (lo, hi); its transpose (hi, lo).
    hp, wp = h + k - 1, wd + k - 1
    x_rows = jnp.pad(x, ((0, 0), (lo, hi), (lo, hi), (0, 0))).reshape(n * hp * wp, c_in)
    g_rows = jnp.pad(g, ((0, 0), (0, k - 1), (0, k - 1), (0, 0))).reshape(n * hp * wp, c_out)
    rows = n * hp * wp - (k - 1) * (wp + 1)
    offsets = [i * wp + j for i in range(k) for j in range(k)]
    dw = [x_rows[o : o + rows].T @ g_rows[:rows] for o in offsets]
    return dx, jnp.stack(dw).reshape(w.shape)


_conv_cpu.defvjp(_conv_cpu_fwd, _conv_cpu_bwd)


def max_pool(x: Array, size: int) -> Array:
    """Max pool with window = stride = `size` and SAME padding (TF1). `[N,H,W,C]` -> `[N,H',W',C]`.

    A size of 1 (or less) means no pooling. The gradient goes to the first maximum of each
    window, as TF's `MaxPoolGrad`. Computed on reshaped windows rather than with
    `lax.reduce_window`, whose gradient XLA:CPU runs as a slow packed reduce-window (~3 ms of a
    15 ms CIFAR-100 step).
    """
    if size <= 1:
        return x
    return _max_pool(x, size)


def _windows(x: Array, size: int) -> Array:
    """`[N, H, W, C]` -> `[N, H', W', C, size*size]`, padded with the lowest float (SAME)."""
    n, h, w, c = x.shape
    out_h, out_w = -(-h // size), -(-w // size)
    pad_h, pad_w = out_h * size - h, out_w * size - w
    pads = ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0))
    x = jnp.pad(x, pads, constant_values=jnp.finfo(x.dtype).min)
    x = x.reshape(n, out_h, size, out_w, size, c).transpose(0, 1, 3, 5, 2, 4)
    return x.reshape(n, out_h, out_w, c, size * size)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _max_pool(x: Array, size: int) -> Array:
    return _max_pool_fwd(x, size)[0]


def _max_pool_fwd(x: Array, size: int) -> tuple[Array, tuple[Array, tuple[int, ...]]]:
    """The max as a gather at the argmax: its own derivative (second order) has no ties."""
    windows = _windows(x, size)
    first = jnp.argmax(windows, axis=-1).astype(jnp.int8)
    top = jnp.take_along_axis(windows, first[..., None].astype(jnp.int32), axis=-1)[..., 0]
    return top, (first, x.shape)


def _max_pool_bwd(size: int, res: tuple[Array, tuple[int, ...]], g: Array) -> tuple[Array]:
    first, (n, h, w, c) = res
    _, out_h, out_w, _ = g.shape
    spread = jnp.where(jnp.arange(size * size, dtype=jnp.int8) == first[..., None], g[..., None], 0)
    spread = spread.reshape(n, out_h, out_w, c, size, size).transpose(0, 1, 4, 2, 5, 3)
    spread = spread.reshape(n, out_h * size, out_w * size, c)
    top, left = (out_h * size - h) // 2, (out_w * size - w) // 2
    return (spread[:, top : top + h, left : left + w, :],)


_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


def conv2d_transpose_same(x: Array, w: Array, out_hw: int, *, stride: int = 2) -> Array:
    """TF1 `conv2d_transpose(x, w, [N, out_hw, out_hw, Cout], stride, "SAME")`.

    Defined, as in TF, as the gradient of the SAME strided convolution that maps an
    `[N, out_hw, out_hw, Cout]` input to `x`'s shape with filter `w` `[h, h, Cout, Cin]`.
    Hand-written because Flax's `ConvTranspose` takes no output size and pads SAME differently
    from TF1 when `out_hw` is odd (DF-CNN's kernels are 3x3, 5x5, 7x7, 11x11).

    Args:
      x: `[N, h_in, h_in, Cin]`, with `h_in = ceil(out_hw / stride)`.
      w: `[h, h, Cout, Cin]` transposed-convolution filter (TF layout).
      out_hw: spatial size of the output.
      stride: the stride of the forward convolution.

    Returns:
      `[N, out_hw, out_hw, Cout]`.
    """
    n, c_out = x.shape[0], w.shape[2]

    def forward(y: Array) -> Array:
        return jax.lax.conv_general_dilated(
            y, w, (stride, stride), "SAME", dimension_numbers=_CONV_DIMS
        )

    dummy = jnp.zeros((n, out_hw, out_hw, c_out), x.dtype)
    _, vjp = jax.vjp(forward, dummy)
    return vjp(x)[0]


def init_head(
    rng: np.random.Generator, fan_in: int, hidden: Sequence[int], num_classes: int, *, he: bool
) -> dict:
    """FC head: hidden ReLU layers then the linear output layer, as `{"fc_i": ..., "out": ...}`."""
    sizes = [fan_in, *hidden, num_classes]
    names = [f"fc_{i}" for i in range(len(hidden))] + ["out"]
    return {
        name: init_dense(rng, a, b, he=he)
        for name, a, b in zip(names, sizes[:-1], sizes[1:], strict=True)
    }


class Head(nn.Module):
    """The task head on flattened features: dropout (keep 0.5) in training, ReLU FCs, output.

    Dropout is applied once, to the features before the first FC layer, as in the reference
    code (docs/protocol.md §2.1); no dropout between FC layers.
    """

    hidden: tuple[int, ...]
    num_classes: int

    @nn.compact
    def __call__(self, feats: Array, *, dropout_rng: Array | None = None) -> Array:
        """`[..., F]` -> `[..., K]`; dropout with `dropout_rng` if given."""
        h = feats
        if dropout_rng is not None:
            h = nn.Dropout(0.5, deterministic=False)(h, rng=dropout_rng)
        for i, size in enumerate(self.hidden):
            h = jax.nn.relu(nn.Dense(size, name=f"fc_{i}")(h))
        return nn.Dense(self.num_classes, name="out")(h)


def apply_head(head: dict, feats: Array, *, dropout_rng: Array | None = None) -> Array:
    """Applies the FC head `{"fc_i": {w, b}, "out": {w, b}}` to features `[..., F]` -> `[..., K]`.

    The parameters keep the names `w`/`b` of checkpoints and of the baselines that grow or mask
    them (DEN, APD); they are renamed to Flax Dense's `kernel`/`bias` here. With `dropout_rng`,
    dropout (keep 0.5) is applied to the features (see `Head`).
    """
    hidden = sorted((k for k in head if k.startswith("fc_")), key=lambda k: int(k[3:]))
    sizes = tuple(head[name]["w"].shape[-1] for name in hidden)
    params = {name: {"kernel": p["w"], "bias": p["b"]} for name, p in head.items()}
    module = Head(sizes, head["out"]["w"].shape[-1])
    return module.apply({"params": params}, feats, dropout_rng=dropout_rng)
