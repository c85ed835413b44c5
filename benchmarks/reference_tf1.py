"""Times the authors' TF1 LASEM code side by side with lasem_jax on the same CPU.

Standalone script: not part of the package, not run by CI; TensorFlow is not a project
dependency. The reference (Lifelong-ML/LASEM, MIT) is never copied or imported into the
project: its checkout is passed with ``--reference`` and imported at run time by a worker
subprocess (this file run with ``--worker``) under an interpreter that has TensorFlow
(``--tf_python``). The other side is ``python -m launch.benchmark --json=...`` run with the
project's interpreter (``--jax_python``). The two sides alternate, round by round, each in its
own subprocess pinned to the same ``--threads`` cores, and the medians are printed as a
markdown table.

Network (both sides): CIFAR-100 4-conv-layer net (32/32/64/64 channels, 3x3, SAME, max-pool 2
after layers 2 and 4, FC [64], 10 classes), batch 10, width 1.0, random data, N = 170 (one
epoch = 17 minibatches). Per learner (hps, tf, dfcnn) the reference side times

* one LASEM minibatch exactly as ``train_lifelong_LASEM`` runs it for a new task (default
  prior mode): ``sess.run(posterior)`` (E-step, dropout keep 1.0), ``sess.run(update)``
  (M-step over all 16 configurations, dropout keep 0.5), running mean of the posteriors and
  ``sess.run(update_prior)``;
* one static minibatch with all layers transferring (``conv_sharing`` TTTT, ``test_type`` 0),
  as ``train_lifelong`` / ``Lifelong_Model_Frame.train_one_epoch`` runs it: one
  ``sess.run(update)`` with dropout keep 0.5.

Reference classes, set up with the reference's own ``utils_env_cl.model_setup`` for
``cifar100_10`` with 4 conv layers as ``main.py`` calls it:

* hps: LASEM ``lasem_hps`` -> ``cnn_lasem_model.LL_CNN_HPS_EM_algo``; static ``hps``
  -> ``cnn_baseline_model.LL_CNN_HPS_minibatch``.
* tf: LASEM ``lasem_tf`` -> ``cnn_lasem_model.LL_hybrid_TF_EM_algo``; static ``hybrid_tf``
  -> ``cnn_baseline_model.LL_CNN_tensorfactor_minibatch`` (``tf`` gives the non-hybrid
  ``mtl_tf_cnn`` set-up without ``conv_sharing``, which that class cannot take).
* dfcnn: LASEM ``lasem_dfcnn`` -> ``cnn_lasem_model.LL_hybrid_DFCNN_EM_algo``; static
  ``hybrid_dfcnn`` -> ``cnn_dfcnn_model.LL_hybrid_DFCNN_minibatch`` (``dfcnn`` is the older
  non-hybrid DF-CNN, which ``train.model_generation`` does not build).

The reference is TF1 code; it runs under TensorFlow 2 through two runtime shims and no file of
it is changed: ``sys.modules["tensorflow"]`` is pointed at ``tensorflow.compat.v1`` after
``disable_v2_behavior()``, and the two removed ``tf.contrib.layers`` functions the DF-CNN
classes call (``l2_regularizer``, ``apply_regularization``) are provided with TF1's semantics.

Usage (from the repository root)::

    python benchmarks/reference_tf1.py --reference=/path/to/LASEM
        --tf_python=/tmp/tfvenv/bin/python --rounds=3 --threads=2
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import math
import os
import pathlib
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

N_TRAIN = 170  # CIFAR-100 (4% split): 170 training images per task.
BATCH = 10
NUM_CLASSES = 10
IMAGE_SHAPE = (32, 32, 3)


@dataclasses.dataclass(frozen=True)
class RefModel:
    """One reference model: its ``model_type`` for ``model_setup`` and the class it maps to."""

    model_type: str
    architecture: str  # What model_setup must return for model_type.
    module: str  # Under classification.model.
    cls: str


# learner -> (LASEM model, static model with all layers transferring).
REFERENCE_MODELS: dict[str, tuple[RefModel, RefModel]] = {
    "hps": (
        RefModel("lasem_hps", "lasem_hps_cnn", "cnn_lasem_model", "LL_CNN_HPS_EM_algo"),
        RefModel("hps", "hybrid_hps_cnn", "cnn_baseline_model", "LL_CNN_HPS_minibatch"),
    ),
    "tf": (
        RefModel("lasem_tf", "lasem_tf_cnn", "cnn_lasem_model", "LL_hybrid_TF_EM_algo"),
        RefModel(
            "hybrid_tf", "hybrid_tf_cnn", "cnn_baseline_model", "LL_CNN_tensorfactor_minibatch"
        ),
    ),
    "dfcnn": (
        RefModel("lasem_dfcnn", "lasem_dfcnn", "cnn_lasem_model", "LL_hybrid_DFCNN_EM_algo"),
        RefModel("hybrid_dfcnn", "hybrid_dfcnn", "cnn_dfcnn_model", "LL_hybrid_DFCNN_minibatch"),
    ),
}

# Training hyper-parameters main.py sets for cifar100_* (only lr and lr_decay enter the graph).
TRAIN_HYPERPARAMS: dict[str, Any] = {
    "lr": 0.0001,
    "lr_decay": 1.0 / 4000.0,
    "improvement_threshold": 1.002,
    "patience_multiplier": 1.5,
    "patience": 2000,
    "em_cnt_prior": False,
    "em_prior_init_cnt": 1.0,
    "reset_prior": False,
}


# --------------------------------------------------------------------------------------------
# Reference side (runs in a subprocess under --tf_python; imports TensorFlow and the reference).
# --------------------------------------------------------------------------------------------


def _install_contrib_shim(tf1: types.ModuleType) -> None:
    """Provides the two ``tf.contrib.layers`` functions the reference's DF-CNN classes call.

    ``tf.contrib`` is gone in TensorFlow 2. These follow TF1's documented semantics:
    ``l2_regularizer(scale)(w) = scale * l2_loss(w)`` (``None`` when ``scale == 0``), and
    ``apply_regularization(reg, ws)`` sums ``reg(w)`` over ``ws`` and adds the sum to the
    ``REGULARIZATION_LOSSES`` collection.
    """

    def l2_regularizer(scale: float, scope: str | None = None) -> Callable[[Any], Any]:
        if scale == 0.0:
            return lambda _: None

        def l2(weights: Any) -> Any:
            with tf1.name_scope(scope, "l2_regularizer", [weights]) as name:
                factor = tf1.convert_to_tensor(scale, dtype=weights.dtype.base_dtype)
                return tf1.multiply(factor, tf1.nn.l2_loss(weights), name=name)

        return l2

    def apply_regularization(regularizer: Callable[[Any], Any], weights_list: Any) -> Any:
        if not weights_list:
            weights_list = tf1.get_collection(tf1.GraphKeys.WEIGHTS)
        with tf1.name_scope("get_regularization_penalty", values=weights_list) as scope:
            penalties = [regularizer(w) for w in weights_list]
            penalties = [tf1.constant(0.0) if p is None else p for p in penalties]
            total = tf1.add_n(penalties, name=scope)
            tf1.add_to_collection(tf1.GraphKeys.REGULARIZATION_LOSSES, total)
            return total

    layers = types.SimpleNamespace(
        l2_regularizer=l2_regularizer, apply_regularization=apply_regularization
    )
    framework = types.SimpleNamespace(is_tensor=tf1.is_tensor)
    tf1.contrib = types.SimpleNamespace(layers=layers, framework=framework)


def _load_reference(reference: pathlib.Path) -> types.SimpleNamespace:
    """Imports TensorFlow (v1 API) and the reference's ``model_setup`` and model classes."""
    import importlib
    import warnings

    import tensorflow.compat.v1 as tf1

    tf1.disable_v2_behavior()  # Graph mode, v1 variables and control flow.
    sys.modules["tensorflow"] = tf1  # The reference does `import tensorflow as tf`.
    _install_contrib_shim(tf1)
    sys.path.insert(0, str(reference))
    warnings.filterwarnings("ignore")

    env = importlib.import_module("utils.utils_env_cl")
    classes = {}
    for models in REFERENCE_MODELS.values():
        for m in models:
            module = importlib.import_module(f"classification.model.{m.module}")
            classes[m.cls] = getattr(module, m.cls)
    return types.SimpleNamespace(tf=tf1, model_setup=env.model_setup, classes=classes)


def _hyperparams(ref: types.SimpleNamespace, model: RefModel) -> dict:
    """Model hyper-parameters as ``main.py`` obtains them for cifar100_10, 4 conv layers.

    ``model_setup(data_type, image_dim, model_type, test_type=0, padding SAME, no skip or
    highway connections, num_clayers=4, phase1_max_epoch=100, darts_approx_order=1)``.
    """
    with contextlib.redirect_stdout(io.StringIO()):  # model_setup prints banners.
        arch, hyper = ref.model_setup(
            "cifar100_10", list(IMAGE_SHAPE), model.model_type, 0, True, 0, 0, 4, 100, 1
        )
    if arch != model.architecture:
        raise RuntimeError(f"model_setup({model.model_type!r}) gave {arch!r}, not {model}")
    return hyper


def _session_config(tf1: types.ModuleType, threads: int) -> Any:
    """Session config: ``threads`` intra- and inter-op threads (0 = TensorFlow's default)."""
    config = tf1.ConfigProto()
    if threads > 0:
        config.intra_op_parallelism_threads = threads
        config.inter_op_parallelism_threads = threads
    return config


def _time_minibatches(
    step: Callable[[Any, Any, int], None],
    data: tuple[Any, Any],
    steps: int,
    warmup: int,
    seed: int,
) -> list[float]:
    """Runs ``warmup + steps`` minibatches over reshuffled epochs; returns the timed seconds.

    ``step(batch_x, batch_y, epoch)`` gets the 1-based epoch number, as the reference's
    ``learning_step``.
    """
    import numpy as np

    data_x, data_y = data
    rng = np.random.RandomState(seed)
    times: list[float] = []
    done, epoch = 0, 0
    while done < warmup + steps:
        epoch += 1
        order = rng.permutation(len(data_x))
        for b in range(len(data_x) // BATCH):
            idx = order[b * BATCH : (b + 1) * BATCH]
            start = time.perf_counter()
            step(data_x[idx], data_y[idx], epoch)
            elapsed = time.perf_counter() - start
            if done >= warmup:
                times.append(elapsed)
            done += 1
            if done >= warmup + steps:
                break
    return times


def _summary(times: Sequence[float]) -> dict[str, float]:
    """Median and mean milliseconds of per-step seconds."""
    return {"ms": 1e3 * statistics.median(times), "mean_ms": 1e3 * statistics.mean(times)}


@contextlib.contextmanager
def _task_session(
    ref: types.SimpleNamespace,
    spec: RefModel,
    hyper: dict,
    args: argparse.Namespace,
    **add_task: Any,
) -> Iterator[tuple[Any, Any, int, float]]:
    """A fresh graph and session with the reference model `spec` and one new task.

    Yields:
      `(session, model, task index, seconds to build the task's graph)`.
    """
    tf1 = ref.tf
    tf1.reset_default_graph()
    tf1.set_random_seed(args.seed)
    model = ref.classes[spec.cls](hyper, dict(TRAIN_HYPERPARAMS))
    with tf1.Session(config=_session_config(tf1, args.threads)) as sess:
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            model.add_new_task(NUM_CLASSES, 0, **add_task)
        build_s = time.perf_counter() - start
        sess.run(tf1.global_variables_initializer())
        yield sess, model, model.find_task_model(0), build_s


def _time_lasem(
    ref: types.SimpleNamespace, learner: str, data: tuple[Any, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """Times one LASEM minibatch as ``train_lifelong_LASEM`` runs it for a new task."""
    import numpy as np

    spec = REFERENCE_MODELS[learner][0]
    # As train_lifelong_LASEM: one input placeholder per task.
    with _task_session(ref, spec, _hyperparams(ref, spec), args) as (sess, model, task, build_s):
        num_configs = len(model._possible_configs)
        accumulated = {"sum": np.zeros(num_configs, np.float32), "count": 0.0}
        parts: dict[str, list[float]] = {"e_step": [], "m_step": [], "prior": []}

        def step(batch_x: Any, batch_y: Any, epoch: int) -> None:
            t0 = time.perf_counter()
            posterior = sess.run(
                model.posterior,
                feed_dict={
                    model.model_input[task]: batch_x,
                    model.true_output[task]: batch_y,
                    model.dropout_prob: 1.0,
                    model.num_data_in_batch: BATCH,
                },
            )
            t1 = time.perf_counter()
            sess.run(
                model.update,
                feed_dict={
                    model.model_input[task]: batch_x,
                    model.true_output[task]: batch_y,
                    model.epoch: epoch - 1,
                    model.dropout_prob: 0.5,
                    model.posterior_placeholder: posterior,
                },
            )
            t2 = time.perf_counter()
            accumulated["sum"] = accumulated["sum"] + posterior
            accumulated["count"] += 1.0
            sess.run(
                model.update_prior,
                feed_dict={
                    model.posterior_placeholder: accumulated["sum"] * (1.0 / accumulated["count"])
                },
            )
            t3 = time.perf_counter()
            parts["e_step"].append(t1 - t0)
            parts["m_step"].append(t2 - t1)
            parts["prior"].append(t3 - t2)

        times = _time_minibatches(step, data, args.steps, args.warmup, args.seed)
        graph_ops = len(ref.tf.get_default_graph().get_operations())
    return {
        **_summary(times),
        "breakdown_ms": {k: 1e3 * statistics.median(v[-len(times) :]) for k, v in parts.items()},
        "num_configs": num_configs,
        "model_type": spec.model_type,
        "class": spec.cls,
        "graph_ops": graph_ops,
        "build_s": build_s,
    }


def _time_static(
    ref: types.SimpleNamespace, learner: str, data: tuple[Any, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """Times one static minibatch (all layers transfer) as ``train_lifelong`` runs it."""
    spec = REFERENCE_MODELS[learner][1]
    hyper = _hyperparams(ref, spec)
    if list(hyper["conv_sharing"]) != [True] * 4:
        raise RuntimeError(f"{spec.model_type}: conv_sharing {hyper['conv_sharing']}, not TTTT")
    # As train_lifelong: one input placeholder shared by the tasks.
    shared_input = {"single_input_placeholder": True}
    with _task_session(ref, spec, hyper, args, **shared_input) as (sess, model, task, build_s):

        def step(batch_x: Any, batch_y: Any, epoch: int) -> None:
            sess.run(  # Body of Lifelong_Model_Frame.train_one_epoch.
                model.update,
                feed_dict={
                    model.model_input: batch_x,
                    model.true_output[task]: batch_y,
                    model.epoch: epoch - 1,
                    model.dropout_prob: 0.5,
                },
            )

        times = _time_minibatches(step, data, args.steps, args.warmup, args.seed)
        graph_ops = len(ref.tf.get_default_graph().get_operations())
    return {
        **_summary(times),
        "model_type": spec.model_type,
        "class": spec.cls,
        "graph_ops": graph_ops,
        "build_s": build_s,
    }


def run_worker(args: argparse.Namespace) -> None:
    """Times the reference's LASEM and static steps of every learner; writes ``args.out``."""
    import numpy as np

    ref = _load_reference(pathlib.Path(args.reference).resolve())
    rng = np.random.RandomState(args.seed)
    # The reference's placeholders take flattened images (reshaped to NHWC in the graph).
    data_x = rng.randn(N_TRAIN, *IMAGE_SHAPE).astype(np.float32).reshape(N_TRAIN, -1)
    data_y = rng.randint(0, NUM_CLASSES, size=N_TRAIN).astype(np.float32)
    result: dict[str, Any] = {"tf_version": ref.tf.__version__, "learners": {}}
    for learner in args.learners:
        result["learners"][learner] = {
            "lasem": _time_lasem(ref, learner, (data_x, data_y), args),
            "static": _time_static(ref, learner, (data_x, data_y), args),
        }
    pathlib.Path(args.out).write_text(json.dumps(result, indent=1))


# --------------------------------------------------------------------------------------------
# Driver (any Python; runs both sides as subprocesses, alternating).
# --------------------------------------------------------------------------------------------


def _pinned_cpus(threads: int) -> list[int] | None:
    """The first ``threads`` CPUs this process may run on; None for no pinning."""
    try:
        available = sorted(os.sched_getaffinity(0))
    except AttributeError:  # Not Linux.
        return None
    if threads <= 0 or threads >= len(available):
        return None
    return available[:threads]


def _run(cmd: Sequence[str], cpus: list[int] | None, env: dict[str, str], what: str) -> str:
    """Runs ``cmd`` from the repository root pinned to ``cpus``; returns its stdout."""
    preexec = None if cpus is None else (lambda: os.sched_setaffinity(0, cpus))
    proc = subprocess.run(
        list(cmd),
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=preexec,
        check=False,
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        raise SystemExit(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


def _child_env(threads: int) -> dict[str, str]:
    """Environment of both sides: CPU only, quiet TensorFlow logs."""
    env = dict(os.environ)
    env.update({"CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "2"})
    if threads > 0:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def run_reference(args: argparse.Namespace, out: pathlib.Path) -> dict[str, Any]:
    """Runs one reference round in a ``--worker`` subprocess under ``--tf_python``."""
    cmd = [
        args.tf_python,
        str(pathlib.Path(__file__).resolve()),
        "--worker",
        f"--out={out}",
        f"--reference={args.reference}",
        f"--learners={','.join(args.learners)}",
        f"--threads={args.threads}",
        f"--steps={args.steps}",
        f"--warmup={args.warmup}",
        f"--seed={args.seed}",
    ]
    _run(cmd, _pinned_cpus(args.threads), _child_env(args.threads), "reference worker")
    return json.loads(out.read_text())


def jax_repeats(steps: int) -> int:
    """Timed epochs of 17 minibatches that cover at least ``steps`` minibatches."""
    return max(1, math.ceil(steps / (N_TRAIN // BATCH)))


def run_jax(args: argparse.Namespace, out: pathlib.Path) -> tuple[dict[str, Any], str | None]:
    """Runs one lasem_jax round: ``python -m launch.benchmark --json=...`` under ``--jax_python``.

    Returns:
      The benchmark's JSON, ``{learner: {"static_ms", "lasem_ms", "flop_ratio", "gflops", ...}}``,
      and the jax version from its output (None if absent).
    """
    cmd = [
        args.jax_python,
        "-m",
        "launch.benchmark",
        f"--json={out}",
        f"--learners={','.join(args.learners)}",
        "--arch=cifar100_4",
        f"--batch_size={BATCH}",
        f"--num_classes={NUM_CLASSES}",
        "--width=1.0",
        "--num_m_steps=1",
        f"--learning_rate={TRAIN_HYPERPARAMS['lr']}",
        f"--steps={N_TRAIN // BATCH}",
        f"--repeats={jax_repeats(args.steps)}",
        f"--seed={args.seed}",
    ]
    stdout = _run(cmd, _pinned_cpus(args.threads), _child_env(args.threads), "launch.benchmark")
    match = re.search(r"\bjax (\S+)", stdout)
    return json.loads(out.read_text()), match.group(1) if match else None


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (falls back to ``platform.processor()``)."""
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def summarise(rounds: Sequence[dict[str, Any]], learners: Sequence[str]) -> dict[str, Any]:
    """Per-learner medians over rounds of both sides and the jax/ref ratios of the medians."""
    medians = {}
    for name in learners:
        ref_lasem = statistics.median(r["ref"]["learners"][name]["lasem"]["ms"] for r in rounds)
        ref_static = statistics.median(r["ref"]["learners"][name]["static"]["ms"] for r in rounds)
        jax_lasem = statistics.median(r["jax"][name]["lasem_ms"] for r in rounds)
        jax_static = statistics.median(r["jax"][name]["static_ms"] for r in rounds)
        medians[name] = {
            "ref_lasem_ms": ref_lasem,
            "ref_static_ms": ref_static,
            "jax_lasem_ms": jax_lasem,
            "jax_static_ms": jax_static,
            "lasem_ratio_jax_over_ref": jax_lasem / ref_lasem,
            "static_ratio_jax_over_ref": jax_static / ref_static,
        }
    return medians


def format_table(medians: dict[str, dict[str, float]]) -> str:
    """The per-learner medians as a markdown table."""
    lines = [
        "| learner | ref LASEM ms | ref static ms | lasem_jax LASEM ms | lasem_jax static ms "
        "| LASEM jax/ref | static jax/ref |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in medians.items():
        lines.append(
            f"| {name} | {m['ref_lasem_ms']:.2f} | {m['ref_static_ms']:.2f} "
            f"| {m['jax_lasem_ms']:.2f} | {m['jax_static_ms']:.2f} "
            f"| {m['lasem_ratio_jax_over_ref']:.2f} | {m['static_ratio_jax_over_ref']:.2f} |"
        )
    return "\n".join(lines)


def run_driver(args: argparse.Namespace) -> None:
    """Alternates reference and lasem_jax rounds, prints the table, optionally writes JSON."""
    reference = pathlib.Path(args.reference).resolve()
    if not (reference / "classification" / "model" / "cnn_lasem_model.py").is_file():
        raise SystemExit(f"--reference={args.reference} is not a LASEM checkout")
    args.reference = str(reference)
    rounds, jax_version = [], None
    with tempfile.TemporaryDirectory(prefix="lasem_ref_bench_") as tmp:
        for i in range(args.rounds):
            start = time.perf_counter()
            ref = run_reference(args, pathlib.Path(tmp) / f"ref{i}.json")
            middle = time.perf_counter()
            jax, jax_version = run_jax(args, pathlib.Path(tmp) / f"jax{i}.json")
            rounds.append({"ref": ref, "jax": jax})
            print(
                f"round {i + 1}/{args.rounds}: reference {middle - start:.0f} s, "
                f"lasem_jax {time.perf_counter() - middle:.0f} s (incl. start-up and compile)",
                file=sys.stderr,
                flush=True,
            )

    medians = summarise(rounds, args.learners)
    cpus = _pinned_cpus(args.threads)
    machine = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "pinned_cpus": cpus,
        "threads": args.threads,
        "tf_version": rounds[0]["ref"]["tf_version"],
        "jax_version": jax_version,
        "python": platform.python_version(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
    pinned = "not pinned" if cpus is None else f"pinned to CPUs {cpus}"
    print(
        f"CPU: {machine['cpu']}, {machine['cores']} cores ({pinned}); threads={args.threads}; "
        f"TensorFlow {machine['tf_version']} (tf.compat.v1 graph mode); "
        f"jax {machine['jax_version']}; XLA_FLAGS={machine['xla_flags'] or '(none)'}"
    )
    print(
        f"CIFAR-100 4-layer net, batch {BATCH}, N={N_TRAIN}, width 1.0; median of {args.rounds} "
        f"alternating round(s); per round: reference median of {args.steps} steps after "
        f"{args.warmup} warm-up, lasem_jax median of {jax_repeats(args.steps)} epoch(s) of "
        f"{N_TRAIN // BATCH} steps after compile + 1 warm-up epoch\n"
    )
    print(format_table(medians))
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k not in ("worker", "out", "json")}
        settings["jax_steps_per_epoch"] = N_TRAIN // BATCH
        settings["jax_repeats"] = jax_repeats(args.steps)
        payload = {"machine": machine, "settings": settings, "rounds": rounds, "medians": medians}
        pathlib.Path(args.json).write_text(json.dumps(payload, indent=1))
        print(f"\nwrote {args.json}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line arguments of both the driver and the ``--worker`` mode."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--reference", required=True, help="Path of the LASEM TF1 checkout.")
    parser.add_argument(
        "--tf_python",
        default=sys.executable,
        help="Interpreter with TensorFlow (>= 1.14 or 2.x) for the reference side.",
    )
    parser.add_argument(
        "--jax_python",
        default=str(REPO_ROOT / ".venv" / "bin" / "python"),
        help="Interpreter with lasem_jax for `python -m launch.benchmark`.",
    )
    parser.add_argument("--rounds", type=int, default=3, help="Alternating rounds (ref, jax).")
    parser.add_argument(
        "--learners",
        type=lambda s: [x for x in s.split(",") if x],
        default=["hps", "tf", "dfcnn"],
        help="Comma-separated base learners (hps, tf, dfcnn).",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=2,
        help="Cores each side is pinned to, and TF intra/inter-op threads (0: all, default TF).",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=100,
        help="Timed minibatches per step kind (reference); lasem_jax times ceil(steps/17) "
        "epochs of 17.",
    )
    parser.add_argument(
        "--warmup", type=int, default=20, help="Untimed warm-up minibatches (reference)."
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of the random data.")
    parser.add_argument("--json", default=None, help="Write all raw rounds and medians here.")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.learners) - set(REFERENCE_MODELS))
    if unknown:
        parser.error(f"unknown learners {unknown}; choose from {sorted(REFERENCE_MODELS)}")
    if args.rounds < 1 or args.steps < 1 or args.warmup < 0:
        parser.error("--rounds and --steps must be >= 1 and --warmup >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: the driver, or the reference worker with ``--worker``."""
    args = parse_args(argv)
    if args.worker:
        run_worker(args)
    else:
        run_driver(args)


if __name__ == "__main__":
    main()
