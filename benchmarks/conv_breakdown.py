"""Where a training step's convolution time goes: forward, input gradient, kernel gradient.

For each conv layer of an architecture (default: the CIFAR-100 4-layer net at batch 10, the
side-by-side benchmark's network) times, inside a `lax.scan` as the training epoch runs them,
`layers.conv2d`'s forward pass, its input gradient alone and its kernel gradient alone (XLA
drops the unused half of the hand-written backward pass), and a plain row-major matmul of the
kernel gradient's FLOPs (`[N*H*W, k*k*Cin] @ [k*k*Cin, Cout]`) as the speed a matmul of that
size reaches here. Prints ms per call (median of repeats) and GFLOP/s:

  python benchmarks/conv_breakdown.py --arch=cifar100_4 --batch_size=10 --repeats=9
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from absl import app, flags

from lasem_jax.native import conv as native_conv
from lasem_jax.networks import layers
from lasem_jax.networks.model import build_model

_ARCH = flags.DEFINE_string("arch", "cifar100_4", "Architecture name.")
_BATCH = flags.DEFINE_integer("batch_size", 10, "Images per call.")
_WIDTH = flags.DEFINE_float("width", 1.0, "Channel multiplier of the architecture.")
_INPUT = flags.DEFINE_list("input_shape", [], "H,W,C of the images; empty: the arch's default.")
_STEPS = flags.DEFINE_integer("steps", 17, "Calls per timed scan.")
_REPEATS = flags.DEFINE_integer("repeats", 9, "Timed scans; the median is reported.")


def time_call(fn: Callable[..., jax.Array], *args: jax.Array) -> float:
    """Median ms of one `fn(*args)` inside a jitted scan of `--steps` calls (inputs vary)."""

    def body(carry: jax.Array, _: None) -> tuple[jax.Array, None]:
        out = fn(*[a + carry for a in args])  # Depends on the carry: not hoisted.
        return carry + 1e-30 * jnp.sum(out), None

    run = jax.jit(lambda: jax.lax.scan(body, jnp.float32(0), None, length=_STEPS.value)[0])
    jax.block_until_ready(run())
    seconds = []
    for _ in range(_REPEATS.value):
        start = time.perf_counter()
        jax.block_until_ready(run())
        seconds.append((time.perf_counter() - start) / _STEPS.value)
    return 1e3 * statistics.median(seconds)


def forward(x: jax.Array, w: jax.Array, g: jax.Array) -> jax.Array:
    """The library's convolution (`g` unused)."""
    del g
    return layers.conv2d(x, w)


def input_grad(x: jax.Array, w: jax.Array, g: jax.Array) -> jax.Array:
    """The convolution's gradient with respect to its input for output cotangent `g`."""
    return jax.vjp(lambda z: layers.conv2d(z, w), x)[1](g)[0]


def kernel_grad(x: jax.Array, w: jax.Array, g: jax.Array) -> jax.Array:
    """The convolution's gradient with respect to its kernel for output cotangent `g`."""
    return jax.vjp(lambda v: layers.conv2d(x, v), w)[1](g)[0]


def main(argv: Sequence[str]) -> None:
    """Times every conv layer's three parts and prints a markdown table with totals."""
    del argv
    shape = [int(v) for v in _INPUT.value] or None
    arch = build_model(_ARCH.value, "hps", 10, width=_WIDTH.value, input_shape=shape).arch
    print(
        f"XLA_FLAGS: {os.environ.get('XLA_FLAGS') or '(none)'}; {jax.devices()[0]}; "
        f"convolutions: {native_conv.path()}"
    )
    print(
        "| layer | input | Cout | MFLOP | forward ms | input grad ms | kernel grad ms "
        "| matmul of kernel grad's size ms | GFLOP/s fwd / dx / dw / matmul |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    key = jax.random.PRNGKey(0)
    h, w, _ = arch.input_shape
    totals = [0.0] * 4
    for i, layer in enumerate(arch.layers):
        c_in, c_out, k = arch.in_channels(i), layer.channels, layer.kernel
        x = jax.random.normal(key, (_BATCH.value, h, w, c_in), jnp.float32)
        kernel = jax.random.normal(key, (k, k, c_in, c_out), jnp.float32)
        g = jax.random.normal(key, (_BATCH.value, h, w, c_out), jnp.float32)
        patches = jax.random.normal(key, (_BATCH.value * h * w, k * k * c_in), jnp.float32)
        mflop = 2 * _BATCH.value * h * w * k * k * c_in * c_out / 1e6
        parts = [time_call(fn, x, kernel, g) for fn in (forward, input_grad, kernel_grad)]
        parts.append(time_call(jnp.matmul, patches, kernel.reshape(-1, c_out)))
        totals = [t + p for t, p in zip(totals, parts, strict=True)]
        speeds = " / ".join(f"{mflop / p:.0f}" for p in parts)
        print(
            f"| {i + 1} | {h}x{w}x{c_in} | {c_out} | {mflop:.0f} | "
            + " | ".join(f"{p:.2f}" for p in parts)
            + f" | {speeds} |"
        )
        h, w = math.ceil(h / layer.pool), math.ceil(w / layer.pool)
    print("| all | | | | " + " | ".join(f"{t:.2f}" for t in totals) + " | |")


if __name__ == "__main__":
    app.run(main)
