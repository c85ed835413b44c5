"""Stride-1 SAME convolutions on oneDNN through `jax.ffi`, differentiable in reverse mode.

`conv(x, w)` equals `lax.conv_general_dilated(x, w, (1, 1), "SAME")` (NHWC, HWIO) to float
rounding; its gradient is oneDNN's backward-data and backward-weights convolutions, and those
two are differentiable in turn (each of the three is a transpose of another: second-order
gradients, e.g. DARTS or meta-gradients, also run natively). Works under `jit`, inside
`lax.scan` and under `vmap` (the batch becomes a leading axis the handlers loop over).
Forward-mode (`jvp`) is not defined, as for any `custom_vjp`.

Which path a process uses: `path()`: $LASEM_JAX_CONV (`xla`, `cpu`, `onednn`) if set, else
`onednn` on the CPU backend where the native library builds and loads (the `native` extra),
else the plain-JAX paths of `lasem_jax.networks.layers.conv2d`.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import functools
import logging
import math
import os
from collections.abc import Iterator

import jax
import jax.numpy as jnp
from jax import Array

from lasem_jax.native import build

PATHS = ("xla", "cpu", "onednn")
_TARGETS = {
    "lasem_conv_fwd": "LasemConvForward",
    "lasem_conv_bwd_data": "LasemConvBackwardData",
    "lasem_conv_bwd_weights": "LasemConvBackwardWeights",
}


@functools.cache
def _load() -> ctypes.CDLL | str:
    """The loaded, registered library, or why it is unavailable (once per process).

    oneDNN's OpenMP threads wait passively between calls unless $OMP_WAIT_POLICY says
    otherwise: spinning takes cores from XLA's own threads, which run the rest of the step
    (static HPS step on 2 cores, 2 alternating rounds: 11.9/13.0 ms spinning, 11.4/11.8 ms
    passive).
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        try:
            lib = ctypes.CDLL(str(build.library()))
        except OSError:  # A damaged cached library (e.g. a disk that filled up): build anew.
            lib = ctypes.CDLL(str(build.library(rebuild=True)))
    except (build.NativeUnavailable, OSError) as e:
        return str(e)
    for target, symbol in _TARGETS.items():
        capsule = jax.ffi.pycapsule(getattr(lib, symbol))
        jax.ffi.register_ffi_target(target, capsule, platform="cpu")
    return lib


_PLAIN = contextvars.ContextVar("lasem_jax_plain_conv", default=False)


@contextlib.contextmanager
def plain() -> Iterator[None]:
    """Within the block `path()` gives the plain-JAX path (`cpu` on CPU, else `xla`).

    For programs XLA partitions itself (GSPMD, e.g. the data-parallel step of
    `train.shard_batch`): its partitioner cannot split a custom call, so it would gather every
    device's minibatch rows onto each device around every convolution. `shard_map` programs
    (batched runs) keep the native path: there each device calls the handlers on its own rows.
    """
    token = _PLAIN.set(True)
    try:
        yield
    finally:
        _PLAIN.reset(token)


def unavailable_reason() -> str | None:
    """None where the oneDNN path works here, else why not and how to enable it."""
    loaded = _load()
    return loaded if isinstance(loaded, str) else None


def path() -> str:
    """The convolution path of this process: `xla`, `cpu` (hand-written gradient) or `onednn`.

    Raises:
      ValueError: $LASEM_JAX_CONV names no path, or asks for `onednn` where it is unavailable.
    """
    asked = os.environ.get("LASEM_JAX_CONV", "")
    if asked and asked not in PATHS:
        raise ValueError(f"LASEM_JAX_CONV={asked!r} is no convolution path; use one of {PATHS}.")
    on_cpu = jax.default_backend() == "cpu"
    if _PLAIN.get():
        return asked if asked in ("xla", "cpu") else ("cpu" if on_cpu else "xla")
    if asked == "onednn" or (not asked and on_cpu):
        reason = unavailable_reason() if on_cpu else "oneDNN handlers are registered for CPU only"
        if reason is None:
            return "onednn"
        if asked:
            raise ValueError(f"LASEM_JAX_CONV=onednn, but the native path is unavailable: {reason}")
        logging.getLogger(__name__).info("oneDNN convolutions unavailable (%s).", reason)
    return asked or ("cpu" if on_cpu else "xla")


MIN_FLOPS = 4e6


def path_for(x_shape: tuple[int, ...], w_shape: tuple[int, ...]) -> str:
    """The path of one convolution of images `x_shape` `[..., H, W, Cin]` and kernel `w_shape`.

    `path()`, except that by default (no $LASEM_JAX_CONV) a convolution of fewer than
    `MIN_FLOPS` multiply-adds x 2 runs the plain `cpu` path: there a call's fixed cost (waking
    oneDNN's threads, the weight reorder) outweighs the arithmetic. Measured on the default
    digits run (8x8 images, batch 10, <= 3 MFLOP per convolution): a static epoch's training
    scan took 33-48 ms on oneDNN and 17-19 ms on the plain path (2 alternating rounds), while
    the same convolutions timed alone in a scan are as fast on both. `benchmarks/
    epoch_breakdown.py` with thresholds 0 / 4 / 20 MFLOP: static epoch 41.9 / 26.7 / 27.8 ms,
    LASEM (prefix batches of up to 160 images) 94.7 / 84.0 / 104.3 ms (one round each).
    """
    chosen = path()
    if chosen != "onednn" or os.environ.get("LASEM_JAX_CONV") == "onednn":
        return chosen
    flops = 2 * math.prod(x_shape[:-1]) * math.prod(w_shape)
    return "onednn" if flops >= MIN_FLOPS else "cpu"


def implementation(op: str, images: tuple[int, int, int, int], kernel: tuple[int, ...]) -> str:
    """The name of the implementation oneDNN picks (e.g. `brg:avx512_core`) for one op.

    Args:
      op: `fwd`, `bwd_data` or `bwd_weights`.
      images: `(N, H, W, Cin)`.
      kernel: `(kh, kw, Cin, Cout)`.
    """
    lib = _load()
    if isinstance(lib, str):
        raise ValueError(f"The native path is unavailable: {lib}")
    out = ctypes.create_string_buffer(256)
    code = ("fwd", "bwd_data", "bwd_weights").index(op)
    (n, h, w, c_in), (kh, kw, _, c_out) = images, kernel
    dims = [ctypes.c_int64(v) for v in (n, h, w, c_in, c_out, kh, kw)]
    if lib.lasem_conv_impl(code, *dims, out, ctypes.c_int(256)) != 0:
        raise ValueError(f"oneDNN has no convolution for {op} {images} * {kernel}.")
    return out.value.decode()


def _call(target: str, out_shape: tuple[int, ...], a: Array, b: Array) -> Array:
    """One handler call; inside `shard_map` the result varies over the arguments' mesh axes."""
    if a.dtype != jnp.float32 or b.dtype != jnp.float32:
        raise TypeError(f"oneDNN convolutions take float32, got {a.dtype} and {b.dtype}.")
    va, vb = (jax.typeof(t).manual_axis_type.varying for t in (a, b))
    if va != vb:  # E.g. per-device images with replicated weights: both made varying.
        a = jax.lax.pcast(a, tuple(vb - va), to="varying") if vb - va else a
        b = jax.lax.pcast(b, tuple(va - vb), to="varying") if va - vb else b
    aval = jax.typeof(a)
    result = jax.ShapeDtypeStruct(out_shape, a.dtype)
    if not aval.manual_axis_type.empty:
        kwargs = {"sharding": aval.sharding, "manual_axis_type": aval.manual_axis_type}
        result = jax.ShapeDtypeStruct(out_shape, a.dtype, **kwargs)
    return jax.ffi.ffi_call(target, result, vmap_method="broadcast_all")(a, b)


@jax.custom_vjp
def conv(x: Array, w: Array) -> Array:
    """Stride-1 SAME convolution.

    Args:
      x: images `[N, H, W, Cin]`.
      w: kernel `[kh, kw, Cin, Cout]`.

    Returns:
      `[N, H, W, Cout]`.
    """
    return _call("lasem_conv_fwd", (*x.shape[:-1], w.shape[-1]), x, w)


@jax.custom_vjp
def input_grad(g: Array, w: Array) -> Array:
    """The transpose of `x -> conv(x, w)` at `g` `[N, H, W, Cout]`: `[N, H, W, Cin]`."""
    return _call("lasem_conv_bwd_data", (*g.shape[:-1], w.shape[-2]), g, w)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def kernel_grad(x: Array, g: Array, kernel_hw: tuple[int, int]) -> Array:
    """The transpose of `w -> conv(x, w)` at `g` `[N, H, W, Cout]`: `[kh, kw, Cin, Cout]`."""
    shape = (*x.shape[:-4], *kernel_hw, x.shape[-1], g.shape[-1])
    return _call("lasem_conv_bwd_weights", shape, x, g)


def _hw(w: Array) -> tuple[int, int]:
    return tuple(w.shape[-4:-2])


# <c, input_grad(g, w)> = <conv(c, w), g> and <c, kernel_grad(x, g)> = <conv(x, c), g>: every
# cotangent of one of the three is another of the three.
conv.defvjp(
    lambda x, w: (conv(x, w), (x, w)),
    lambda res, g: (input_grad(g, res[1]), kernel_grad(res[0], g, _hw(res[1]))),
)
input_grad.defvjp(
    lambda g, w: (input_grad(g, w), (g, w)),
    lambda res, c: (conv(c, res[1]), kernel_grad(c, res[0], _hw(res[1]))),
)
kernel_grad.defvjp(
    lambda x, g, hw: (kernel_grad(x, g, hw), (x, g)),
    lambda hw, res, c: (input_grad(res[1], c), conv(res[0], c)),
)
