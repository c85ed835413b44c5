"""Where the time of one static HPS training step goes: convolutions, pooling, head, optimizer.

Times the static step that `python -m launch.benchmark --learners=hps` reports as "static
ms/step" (the CIFAR-100 4-layer network, HPS, every layer transferred, 10 classes, RMSProp, on
random data), the way that launcher does: one jitted `steps.train_epoch` of `--steps`
minibatches per timed call. Then times each group of the step's operations alone, at the step's
shapes, inside a jitted `lax.scan` of `--steps` calls whose inputs depend on the loop carry (so
nothing is hoisted out of the loop). All rows are timed round-robin, `--repeats` rounds, and
each prints its median ms per step and its share of the whole step:

  python benchmarks/step_breakdown.py --width=1.0 --batch_size=10 --steps=17 --repeats=7

Rows:
  whole static step: `steps.train_epoch` (method `static`) per minibatch, as launch.benchmark
    times it, including the epoch's shuffle and minibatch gathers.
  convolutions: `layers.conv2d` on this process's path ($LASEM_JAX_CONV, see
    `lasem_jax.native.conv.path`) for each conv layer: the forward pass, the input gradient
    (not layer 1's, which training never needs) and the kernel gradient.
  pooling: `layers.max_pool` forward and backward of each pooling layer.
  head: the FC head's forward and backward (dropout on its input, ReLU hidden layer, logits,
    mean softmax cross-entropy): gradients of its parameters and of its input features.
  optimizer: the step's RMSProp update (`steps.make_optimizer`) of the whole parameter tree.
  everything else: the whole step minus the four rows above, not measured: bias adds, ReLUs,
    choosing the configuration's parameters, the loss's reduction, the RNG, the shuffle and
    gathers, and whatever XLA fuses differently in the whole step than in the parts.

The conv, pooling and head scans also read their outputs once (a sum: the loop's dependency on
them). The step reads them too, but in the ops of the remainder (bias adds, ReLUs, the
optimizer), so each of these rows subtracts the median of a scan of that sum alone over arrays
of its outputs' shapes (last column). The optimizer's scan carries the train state itself.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from absl import app, flags

from lasem_jax.core import em
from lasem_jax.engine import steps
from lasem_jax.native import conv as native_conv
from lasem_jax.networks import layers
from lasem_jax.networks.model import Model, build_model

_WIDTH = flags.DEFINE_float("width", 1.0, "Channel multiplier of the architecture.")
_BATCH = flags.DEFINE_integer("batch_size", 10, "Minibatch size B.")
_STEPS = flags.DEFINE_integer("steps", 17, "Steps (calls) per timed scan.")
_REPEATS = flags.DEFINE_integer("repeats", 7, "Timed scans per row; the median is reported.")

ARCH, LEARNER, NUM_CLASSES, LEARNING_RATE, SEED = "cifar100_4", "hps", 10, 1e-4, 0
Runner = Callable[[], float]  # Runs one more timed scan; returns its seconds per step.


def scan_runner(body: Callable[[Any], Any], carry: Any) -> Runner:
    """Compiles and warms up a jitted scan of `--steps` calls `carry -> body(carry)`."""
    run = jax.jit(lambda c: jax.lax.scan(lambda c, _: (body(c), None), c, None, _STEPS.value)[0])
    holder = [jax.block_until_ready(run(carry))]

    def timed() -> float:
        start = time.perf_counter()
        holder[0] = jax.block_until_ready(run(holder[0]))
        return (time.perf_counter() - start) / _STEPS.value

    return timed


def _depend(carry: tuple[Any, ...], out: Any) -> tuple[Any, ...]:
    """`carry` with one element of each leaf made to depend on a sum over all of `out`."""
    s = 1e-30 * sum(jnp.sum(leaf.astype(jnp.float32)) for leaf in jax.tree.leaves(out))
    return jax.tree.map(lambda a: a.at[(0,) * a.ndim].add(s.astype(a.dtype)), carry)


def call_runners(fn: Callable[..., Any], *args: Any) -> tuple[Runner, Runner]:
    """Runners of `fn(*args)`, its next inputs depending on its outputs, and of that alone.

    The second runner only reads outputs of `fn`'s shapes once (the sum), as the first does:
    what the step reads of them is the remainder's, so the parts subtract it.
    """
    shapes = jax.tree.leaves(jax.eval_shape(fn, *args))
    outs = tuple(jnp.zeros(o.shape, o.dtype) for o in shapes)
    return (
        scan_runner(lambda c: _depend(c, fn(*c)), args),
        scan_runner(lambda c: _depend(c, c), outs),
    )


def whole_step_runner(model: Model) -> tuple[Runner, steps.TrainState]:
    """launch.benchmark's `compile_epoch` for the static step (its defaults: lr, seed, data).

    Returns:
      The runner of one epoch and the train state it starts from.
    """
    hp = steps.StepConfig(method="static", batch_size=_BATCH.value, num_m_steps=1)
    data_key, label_key, init_key, state_key = jax.random.split(jax.random.PRNGKey(SEED), 4)
    n = _STEPS.value * _BATCH.value
    x = jax.random.normal(data_key, (n, *model.arch.input_shape), jnp.float32)
    y = jax.random.randint(label_key, (n,), 0, model.num_classes)
    lr = jnp.asarray(LEARNING_RATE, jnp.float32)
    config = jnp.ones((model.num_layers,), bool)  # The static network: all layers transfer.
    epoch = jax.jit(steps.train_epoch, static_argnums=(0, 1))
    state = steps.init_state(model, hp, model.init(init_key), state_key, LEARNING_RATE)
    holder = [jax.block_until_ready(epoch(model, hp, state, x, y, lr, config))[0]]  # Warm-up.

    def timed() -> float:
        start = time.perf_counter()
        holder[0] = jax.block_until_ready(epoch(model, hp, holder[0], x, y, lr, config))[0]
        return (time.perf_counter() - start) / _STEPS.value

    return timed, state


def convolutions(xs: list[jax.Array], ws: list[jax.Array], gs: list[jax.Array]) -> list[jax.Array]:
    """Every conv layer's output, input gradient (none for layer 1) and kernel gradient.

    Args:
      xs: each layer's input `[B, H, W, Cin]`.
      ws: each layer's kernel `[k, k, Cin, Cout]`.
      gs: each layer's output cotangent `[B, H, W, Cout]`.
    """
    outs = []
    for i, (x, w, g) in enumerate(zip(xs, ws, gs, strict=True)):
        if i == 0:  # The images need no gradient: XLA drops the input gradient.
            out, vjp = jax.vjp(lambda v, x=x: layers.conv2d(x, v), w)
        else:
            out, vjp = jax.vjp(layers.conv2d, x, w)
        outs += [out, *vjp(g)]
    return outs


def pooling(zs: list[jax.Array], gs: list[jax.Array], sizes: list[int]) -> list[jax.Array]:
    """Every max pool's output and input gradient.

    Args:
      zs: each pool's input `[B, H, W, C]`.
      gs: each pool's output cotangent `[B, H', W', C]`.
      sizes: each pool's window (and stride).
    """
    outs = []
    for z, g, size in zip(zs, gs, sizes, strict=True):
        out, vjp = jax.vjp(lambda t, size=size: layers.max_pool(t, size), z)
        outs += [out, *vjp(g)]
    return outs


def head_runners(
    model: Model, params: dict, feats: jax.Array, y: jax.Array
) -> tuple[Runner, Runner]:
    """The head's loss and gradients (its parameters, its input), dropout as in training."""

    def loss(head: dict, f: jax.Array, key: jax.Array) -> jax.Array:
        logits = model.head({"task": {"head": head}}, f, train=True, rng=key)
        return em.per_config_nll(logits[None], y)[0]

    def fn(head: dict, f: jax.Array, key: jax.Array) -> tuple:
        return jax.value_and_grad(loss, argnums=(0, 1))(head, f, key)

    return call_runners(fn, params["task"]["head"], feats, jax.random.PRNGKey(1))


def optimizer_runner(state: steps.TrainState) -> Runner:
    """The static step's optimizer update (`steps._apply_grads`), the state carried."""
    grads = jax.tree.map(lambda p: jnp.full_like(p, 1e-3), state.params)

    def body(carry: tuple[steps.TrainState, dict]) -> tuple[steps.TrainState, dict]:
        st, g = carry
        return steps._apply_grads(st, g, st.rng, st.prior), g

    return scan_runner(body, (state, grads))


def part_runners(model: Model, state: steps.TrainState) -> dict[str, tuple[Runner, Runner | None]]:
    """Runners of the conv, pooling, head and optimizer rows at the step's shapes.

    Each with the runner of its output reads to subtract (None: nothing to subtract).
    """
    arch, batch = model.arch, _BATCH.value
    keys = iter(jax.random.split(jax.random.PRNGKey(SEED + 1), 4 * arch.num_layers + 2))

    def normal(*shape: int) -> jax.Array:
        return jax.random.normal(next(keys), shape, jnp.float32)

    xs, ws, gs, zs, pool_gs, sizes = [], [], [], [], [], []
    (h, w, _), params = arch.input_shape, state.params
    for i, layer in enumerate(arch.layers):
        xs.append(normal(batch, h, w, arch.in_channels(i)))
        ws.append(model.layer_kernels(params, i)[0][0])  # The transfer (shared) kernel.
        gs.append(normal(batch, h, w, layer.channels))
        if layer.pool > 1:
            zs.append(normal(batch, h, w, layer.channels))
            h, w = math.ceil(h / layer.pool), math.ceil(w / layer.pool)
            pool_gs.append(normal(batch, h, w, layer.channels))
            sizes.append(layer.pool)
    feats = normal(batch, arch.feature_dim)
    y = jax.random.randint(next(keys), (batch,), 0, model.num_classes)
    return {
        "convolutions (forward, input grad of layers 2+, kernel grad)": call_runners(
            convolutions, xs, ws, gs
        ),
        "pooling (max pools, forward + backward)": call_runners(
            lambda z, g: pooling(z, g, sizes), zs, pool_gs
        ),
        "head (FC forward + backward, dropout, softmax CE)": head_runners(model, params, feats, y),
        "optimizer (RMSProp update of all parameters)": (optimizer_runner(state), None),
    }


def main(argv: Sequence[str]) -> None:
    """Times the whole step and its parts, interleaved, and prints a markdown table."""
    del argv
    model = build_model(ARCH, LEARNER, NUM_CLASSES, width=_WIDTH.value)
    whole, state = whole_step_runner(model)
    pairs = {"whole static step (launch.benchmark)": (whole, None), **part_runners(model, state)}
    runners = {(name, i): run for name, pair in pairs.items() for i, run in enumerate(pair) if run}
    times: dict[tuple[str, int], list[float]] = {key: [] for key in runners}
    for _ in range(_REPEATS.value):  # Round-robin, so that drift affects every row alike.
        for key, run in runners.items():
            times[key].append(run())
    med = {key: 1e3 * statistics.median(t) for key, t in times.items()}
    reads = {name: med.get((name, 1), 0.0) for name in pairs}
    ms = {name: med[name, 0] - reads[name] for name in pairs}
    total, *parts = ms.values()
    ms["everything else (remainder: whole - parts, not measured)"] = total - sum(parts)
    print(
        f"{jax.devices()[0]} ({jax.default_backend()}), jax {jax.__version__}, "
        f"XLA_FLAGS: {os.environ.get('XLA_FLAGS') or '(none)'}; "
        f"convolutions: {native_conv.path()}"
    )
    print(
        f"{ARCH}, {LEARNER} static, width {_WIDTH.value}, batch {_BATCH.value}, "
        f"{NUM_CLASSES} classes; ms per step, median of {_REPEATS.value} scans of "
        f"{_STEPS.value} steps\n"
    )
    print("| part | ms/step | % of step | output reads subtracted, ms |")
    print("|---|---|---|---|")
    for name, value in ms.items():
        read = f"{reads[name]:.2f}" if reads.get(name) else ""
        print(f"| {name} | {value:.2f} | {100 * value / total:.0f} | {read} |")


if __name__ == "__main__":
    app.run(main)
