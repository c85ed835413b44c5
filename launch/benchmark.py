"""Times one LASEM training step over all configurations against one static configuration.

For each base learner, prints the wall time of a LASEM step (all configurations, prefix
sharing) divided by that of a static step (all layers transfer), next to the ratio of their
forward FLOPs counted from the prefix plan and XLA's own count for the compiled epoch:

  python -m launch.benchmark --arch=cifar100_4 --batch_size=10 --learners=hps,tf,dfcnn \
      --steps=17 --repeats=5 --width=1.0 --num_classes=10 --num_m_steps=1
"""

from __future__ import annotations

import itertools
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from absl import flags

from lasem_jax.core import prefix_plan
from lasem_jax.engine import steps
from lasem_jax.native import conv as native_conv
from lasem_jax.networks.model import Model, build_model
from lasem_jax.storage import results_io
from launch import common

_ARCH = flags.DEFINE_string("arch", "cifar100_4", "Architecture name.")
_BATCH = flags.DEFINE_integer("batch_size", 10, "Minibatch size B.")
_LEARNERS = flags.DEFINE_list("learners", ["hps", "tf", "dfcnn"], "Base learners to time.")
_STEPS = flags.DEFINE_integer("steps", 17, "Minibatches per timed epoch.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed epochs; the median is reported.")
_WIDTH = flags.DEFINE_float("width", 1.0, "Channel multiplier of the architecture.")
_CLASSES = flags.DEFINE_integer("num_classes", 10, "Classes K of the head.")
_M_STEPS = flags.DEFINE_integer("num_m_steps", 1, "M-steps per E-step.")
_LR = flags.DEFINE_float("learning_rate", 1e-4, "RMSProp learning rate.")
_SEED = flags.DEFINE_integer("seed", 0, "PRNG seed of the parameters and the random data.")
_JSON = flags.DEFINE_string(
    "json", None, "Also write {learner: {static_ms, lasem_ms, flop_ratio, gflops, ...}} here."
)


def forward_flops(model: Model, batch: int) -> tuple[int, int]:
    """Analytic forward FLOPs `(lasem, static)` of one minibatch: convs and the dense head."""
    arch = model.arch
    h, w, _ = arch.input_shape
    conv = []
    for i, layer in enumerate(arch.layers):  # SAME conv: output H, W = input H, W.
        conv.append(2 * batch * h * w * layer.kernel**2 * arch.in_channels(i) * layer.channels)
        h, w = math.ceil(h / layer.pool), math.ceil(w / layer.pool)
    sizes = [arch.feature_dim, *arch.fc_hidden, model.num_classes]
    head = 2 * batch * sum(a * b for a, b in itertools.pairwise(sizes))
    evals = prefix_plan.layer_evaluations(model.plan)
    lasem = sum(int(n) * c for n, c in zip(evals, conv, strict=True)) + model.num_configs * head
    return lasem, sum(conv) + head


def xla_flops(compiled: jax.stages.Compiled) -> float | None:
    """XLA's FLOP count of a compiled function, or None where the backend gives none.

    None also where convolutions are FFI custom calls (the `onednn` path), which XLA cannot
    count.
    """
    if native_conv.path() == "onednn":
        return None
    cost = compiled.cost_analysis()
    if isinstance(cost, Sequence) and not isinstance(cost, dict):
        cost = cost[0] if cost else None
    flops = None if cost is None else cost.get("flops")
    return None if flops is None or flops <= 0 else float(flops)


def compile_epoch(
    model: Model, method: str, key: jax.Array
) -> tuple[Callable[[], float], float | None]:
    """Compiles and warms up `train_epoch` with `method` on random data.

    Returns:
      A function running one more epoch and returning its seconds per minibatch, and XLA's
      FLOPs of the compiled epoch (None where the backend counts none). XLA counts the scan
      body once, so this is about one step's forward and backward; the ratio is unaffected.
    """
    hp = steps.StepConfig(method=method, batch_size=_BATCH.value, num_m_steps=_M_STEPS.value)
    data_key, label_key, init_key, state_key = jax.random.split(key, 4)
    n = _STEPS.value * _BATCH.value
    x = jax.random.normal(data_key, (n, *model.arch.input_shape), jnp.float32)
    y = jax.random.randint(label_key, (n,), 0, model.num_classes)
    lr = jnp.asarray(_LR.value, jnp.float32)
    config = jnp.ones((model.num_layers,), bool)  # The static network: all layers transfer.
    epoch = jax.jit(steps.train_epoch, static_argnums=(0, 1))
    state = steps.init_state(model, hp, model.init(init_key), state_key, _LR.value)
    flops = xla_flops(epoch.lower(model, hp, state, x, y, lr, config).compile())
    holder = [jax.block_until_ready(epoch(model, hp, state, x, y, lr, config))[0]]  # Warm-up.

    def run() -> float:
        start = time.perf_counter()
        holder[0] = jax.block_until_ready(epoch(model, hp, holder[0], x, y, lr, config))[0]
        return (time.perf_counter() - start) / _STEPS.value

    return run, flops


def time_learner(name: str) -> dict[str, float | int | None]:
    """Times one learner's static and LASEM steps, interleaved, and counts their FLOPs.

    Returns:
      `static_ms` and `lasem_ms` (median ms per minibatch), `flop_ratio` (analytic forward
      FLOPs of LASEM over static), `xla_flop_ratio`, `gflops` and `static_gflops` (achieved
      GFLOP/s of each step from XLA's count of one forward and backward pass; None where the
      backend counts none) and `num_configs`.
    """
    model = build_model(_ARCH.value, name, _CLASSES.value, width=_WIDTH.value)
    key = jax.random.PRNGKey(_SEED.value)
    static_run, static_xla = compile_epoch(model, "static", key)
    lasem_run, lasem_xla = compile_epoch(model, "lasem", key)
    times = [(static_run(), lasem_run()) for _ in range(_REPEATS.value)]  # Interleaved.
    static_ms, lasem_ms = (1e3 * statistics.median(t) for t in zip(*times, strict=True))
    lasem_fl, static_fl = forward_flops(model, _BATCH.value)
    both = lasem_xla is not None and static_xla is not None
    return {
        "num_configs": model.num_configs,
        "static_ms": static_ms,
        "conv_path": native_conv.path(),
        "lasem_ms": lasem_ms,
        "flop_ratio": lasem_fl / static_fl,
        "xla_flop_ratio": lasem_xla / static_xla if both else None,
        "gflops": None if lasem_xla is None else lasem_xla / lasem_ms / 1e6,
        "static_gflops": None if static_xla is None else static_xla / static_ms / 1e6,
    }


def main(argv: Sequence[str]) -> None:
    """Benchmarks every learner, prints a markdown table and optionally writes JSON."""
    del argv
    flags = os.environ.get("XLA_FLAGS") or "(none)"
    print(f"device: {jax.devices()[0]} ({jax.default_backend()}), jax {jax.__version__}")
    print(f"XLA_FLAGS: {flags}; convolutions: {native_conv.path()}")
    rows = {}
    for name in _LEARNERS.value:
        r = rows[name] = time_learner(name)
        xla = "n/a" if r["xla_flop_ratio"] is None else f"{r['xla_flop_ratio']:.2f}"
        print(
            f"{name}: {r['num_configs']} configs, static {r['static_ms']:.2f} ms/step, "
            f"LASEM {r['lasem_ms']:.2f} ms/step, time ratio {r['lasem_ms'] / r['static_ms']:.2f},"
            f" FLOP ratio {r['flop_ratio']:.2f} (XLA {xla})"
        )
    print(
        f"\n{_ARCH.value}, width {_WIDTH.value}, batch {_BATCH.value}, {_STEPS.value} steps/epoch,"
        f" median of {_REPEATS.value} epochs, {_M_STEPS.value} M-step(s), "
        f"{jax.devices()[0].device_kind}\n"
    )
    print(
        "| learner | static ms/step | LASEM ms/step | time ratio | FLOP ratio (analytic) "
        "| LASEM GFLOP/s (XLA count) |"
    )
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        gflops = "n/a" if r["gflops"] is None else f"{r['gflops']:.0f}"
        print(
            f"| {name} | {r['static_ms']:.2f} | {r['lasem_ms']:.2f} "
            f"| {r['lasem_ms'] / r['static_ms']:.2f} | {r['flop_ratio']:.2f} | {gflops} |"
        )
    if _JSON.value:
        results_io.write_json_atomic(_JSON.value, rows)
        print(f"wrote {_JSON.value}")


if __name__ == "__main__":
    common.run(main)
