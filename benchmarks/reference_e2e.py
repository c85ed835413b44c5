"""Times whole lifelong runs of the authors' TF1 LASEM code and of lasem_jax on the same tasks.

Usage (from the repository root)::

    python benchmarks/reference_e2e.py --reference=/path/to/LASEM \
        --tf_python=/tmp/tfvenv/bin/python --rounds=3 --threads=2 --json=e2e.json

Standalone script, not run by CI; TensorFlow is not a project dependency and the reference
(Lifelong-ML/LASEM, MIT) is never copied into the project: a worker subprocess (this file with
``--worker``, under ``--tf_python``) imports it at run time from ``--reference``, under TF2's
``tf.compat.v1`` through the shims of ``reference_tf1.py`` (``sys.modules["tensorflow"]`` is
``tensorflow.compat.v1`` after ``disable_v2_behavior()``, plus two ``tf.contrib.layers``
functions). No file of the reference is changed; the worker patches at run time only
``np.object`` (removed from NumPy 1.24, used by ``train_wrapper``), ``tf.ConfigProto`` (to set
``--threads`` intra/inter-op threads in the sessions the reference makes), the name ``sleep``
of ``classification.train`` (``model_generation`` sleeps 5 s; a no-op here, for both numbers)
and, where they cannot be imported, empty stand-ins for modules imported but never called here
(``UNUSED_IMPORTS``: TF1's MNIST reader, scikit-image, matplotlib, scikit-learn).

Tasks: ``configs/default.py``'s digits scenario (5 tasks x 3 classes of scikit-learn's digits,
8x8x1, 288/78/156 train/val/test images per task), built once with
``lasem_jax.data.make_tasks(config.data, seed=config.seed)`` under ``--jax_python`` (exactly
what ``launch.train`` builds) and written to a temporary directory; the reference gets them
as its loaders return data (per task ``(x [N, 64] float32, y [N] float32)``, grouped as
``main.py`` hands them to ``train_run_for_each_model`` with ``data_type="cifar100_10"``).

Per method and round, each side runs in its own subprocess pinned to the first ``--threads``
CPUs; which side goes first alternates round by round.

* lasem_jax: ``python -m launch.train --config=configs/default.py --workdir=<fresh tmp>
  --config.train.epochs_per_task=E`` (static: ``--config.method=static
  --config.static_config=all``). Training time: ``train_seconds`` of its results.json (from
  after workdir set-up to the end of the last task: jit compilation, every epoch, the per-epoch
  validation+test evaluation of all seen tasks, checkpoints, metrics and TensorBoard files).
  ``launch.train`` keeps JAX's persistent compilation cache (~/.cache/lasem_jax/jax) by
  default, so once a program is cached a run loads it instead of compiling;
  ``--jax_compilation_cache=`` (empty) turns it off and every lasem_jax run compiles.
* reference: ``train_wrapper.train_run_for_each_model`` (what ``main.py`` calls; 1 run, data
  group 0, ``doLifelong=True``) for ``lasem_hps`` (-> ``train_lifelong_LASEM``) or ``hps``
  with ``test_type=0`` (conv_sharing TTTT, -> ``train_lifelong``). Training time: wall time
  around that call (the reference builds each task's graph and session inside its loop, so
  graph set-up is included; also its per-epoch train+val+test evaluation of all seen tasks,
  its epoch-0 evaluation and the final ``savemat`` of the summary). Its own ``training_time``
  (same, without model construction and ``savemat``) is kept in the JSON.
* Whole-process time (both): the subprocess's wall time: interpreter start, imports
  (TensorFlow / jax), for the reference loading the prepared arrays, for lasem_jax building
  the tasks, training, writing results.

Matched to the lasem_jax config (read from it; the reference's ``model_setup("cifar100_10",
[8, 8, 1], ...)`` with its kernel, channel, pool, FC and batch entries replaced): the CIFAR-100
4-conv net (3x3, SAME, pools after layers 2 and 4) at the config's width (channels 16/16/32/32,
FC hidden 32 at width 0.5), batch 10, TF1 RMSProp lr 1e-3 with lr decay 0, truncated-normal
0.05 / bias 0.2 init, E epochs per task (patience E, learning_step_max 5E), dropout 0.5 before
the head, the Laplace-count prior with initial count 1 (``em_cnt_prior``), one M-step per
E-step, 16 configurations. Differences that could not be removed:

* Likelihood: lasem_jax's default is the paper's product (Eq. 2); the reference code has only
  the minibatch mean.
* Evaluation: the reference evaluates train, validation and test accuracy of every seen task
  after every epoch and once before the first epoch, in session calls of batch 10; lasem_jax
  evaluates validation and test each epoch and the kept model once per task.
* Bookkeeping: lasem_jax checkpoints (every 10 epochs and at task ends), writes metrics.jsonl
  and TensorBoard events inside ``train_seconds``; the reference prints per epoch and writes
  a .mat summary.
* Random streams differ (initial weights, shuffles, dropout), so the chosen configurations
  and accuracies are comparable only statistically. The reference's TF initialisation is not
  seeded (it resets the graph per task; Python's and NumPy's generators are seeded); with this
  init and lr 1e-3 a run can sit at chance for the first several epochs of task 1.
* Whole-process work: the lasem_jax process builds its tasks itself; the reference process
  loads them prepared (the preparation, under ``--jax_python``, is not timed).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import pathlib
import platform
import runpy
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import reference_tf1 as rt1  # Sibling script: its shims, pinning and subprocess runner.

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SPLITS = ("train", "val", "test")
# method -> (reference model_type, architecture model_setup must give, lasem_jax overrides).
METHODS: dict[str, tuple[str, str, list[str]]] = {
    "lasem": ("lasem_hps", "lasem_hps_cnn", []),
    "static": ("hps", "hybrid_hps_cnn", ["--config.method=static", "--config.static_config=all"]),
}
# Modules the reference imports at module level (names it takes from them) that no code path
# of this benchmark calls; stubbed where they cannot be imported.
UNUSED_IMPORTS: dict[str, tuple[str, ...]] = {
    "tensorflow.examples.tutorials.mnist": ("input_data",),
    "skimage": (),
    "matplotlib.image": (),
    "sklearn.metrics": ("roc_curve", "auc"),
}


def dump_data(args: argparse.Namespace) -> None:
    """Writes the launcher's tasks and the matched settings to ``args.out`` (jax side)."""
    import jax
    import numpy as np

    from lasem_jax.data import make_tasks
    from lasem_jax.networks.architectures import get_architecture

    config = runpy.run_path(str(REPO_ROOT / "configs" / "default.py"))["get_config"]()
    tasks = make_tasks(config.data, seed=int(config.seed))
    net = get_architecture(
        config.model.arch,
        width=config.model.width,
        input_shape=tasks[0].x_train.shape[1:],
        fc_hidden=config.model.fc_hidden,
    )
    arrays = {
        f"{v}_{s}_{k}": getattr(t, f"{v}_{s}")
        for k, t in enumerate(tasks)
        for s in SPLITS
        for v in "xy"
    }
    np.savez(pathlib.Path(args.out) / "tasks.npz", **arrays)
    scenario = {
        "num_tasks": len(tasks),
        "sizes": [[len(getattr(t, f"y_{s}")) for s in SPLITS] for t in tasks],
        "image_shape": list(tasks[0].x_train.shape[1:]),
        "kernels": [b.kernel for b in net.blocks],
        "channels": [b.channels for b in net.blocks],
        "pools": [b.pool for b in net.blocks],
        "fc_hidden": list(net.fc_hidden),
        "batch_size": int(config.train.batch_size),
        "lr": float(config.optim.lr),
        "lr_decay": float(config.optim.lr_decay),
        "he_init": bool(config.model.he_init),
        "prior": config.em.prior,
        "prior_init_count": float(config.em.prior_init_count),
        "seed": int(config.seed),
        "jax_version": jax.__version__,
    }
    (pathlib.Path(args.out) / "scenario.json").write_text(json.dumps(scenario))


def _train_hyperpara(scenario: dict[str, Any], epochs: int) -> dict[str, Any]:
    """The ``train_hyperpara`` keys read here, set as ``main.py`` does, matched to lasem_jax."""
    if scenario["prior"] not in ("laplace", "running_mean") or scenario["he_init"]:
        raise SystemExit("the reference has no counterpart of this prior / He initialisation")
    num_tasks = scenario["num_tasks"]
    return {
        "num_run_per_model": 1,
        "train_valid_data_group": [0],
        "num_tasks": num_tasks,
        "task_order": list(range(num_tasks)),
        "lr": scenario["lr"],
        "lr_decay": scenario["lr_decay"],
        "patience": epochs,  # Epochs per task: min(patience, learning_step_max // num_tasks).
        "learning_step_max": num_tasks * epochs,
        "improvement_threshold": 1.002,
        "patience_multiplier": 1.5,
        "em_cnt_prior": scenario["prior"] == "laplace",
        "em_prior_init_cnt": scenario["prior_init_count"],
        "reset_prior": False,
        "stl_analysis": False,
        "LEEP_score": False,
    }


def _stub_unused_imports() -> None:
    """Empty stand-ins for modules the reference imports but this run never calls, if missing.

    TF1's MNIST reader (``tensorflow.examples``, gone from TF2), scikit-image and matplotlib
    (``gen_data``'s dataset builders) and scikit-learn (``cnn_den_model``'s DEN): the tasks come
    prepared and only HPS models run.
    """
    import importlib
    import types

    for dotted, names in UNUSED_IMPORTS.items():
        try:
            importlib.import_module(dotted)
            continue
        except ImportError:
            pass
        parts = dotted.split(".")
        parent = sys.modules.setdefault(parts[0], types.ModuleType(parts[0]))
        for i in range(1, len(parts)):
            name = ".".join(parts[: i + 1])
            module = sys.modules.setdefault(name, types.ModuleType(name))
            setattr(parent, parts[i], module)
            parent = module
        for attr in names:
            setattr(parent, attr, None)


def run_worker(args: argparse.Namespace) -> None:
    """Runs the reference's ``train_run_for_each_model`` once; writes ``args.out`` (TF side)."""
    import importlib
    import random

    import numpy as np

    data_dir = pathlib.Path(args.data)
    scenario = json.loads((data_dir / "scenario.json").read_text())
    random.seed(scenario["seed"])
    np.random.seed(scenario["seed"])
    if "object" not in np.__dict__:
        np.object = object  # Removed alias that train_wrapper uses.
    ref = rt1._load_reference(pathlib.Path(args.reference))
    tf1, pinned = ref.tf, []
    make_config = tf1.ConfigProto

    def config_proto(*a: Any, **kw: Any) -> Any:
        config = make_config(*a, **kw)
        if args.threads > 0:
            config.intra_op_parallelism_threads = args.threads
            config.inter_op_parallelism_threads = args.threads
        pinned.append(args.threads)
        return config

    tf1.ConfigProto = config_proto  # The reference calls tf.ConfigProto() in its loops.
    _stub_unused_imports()
    importlib.import_module("classification.train").sleep = lambda _: None
    wrapper = importlib.import_module("classification.train_wrapper")

    model_type, architecture, _ = METHODS[args.method]
    layers = len(scenario["channels"])
    with contextlib.redirect_stdout(io.StringIO()):  # model_setup prints banners.
        arch, hyper = ref.model_setup(
            "cifar100_10", scenario["image_shape"], model_type, 0, True, 0, 0, layers, 100, 1
        )
    if arch != architecture:
        raise RuntimeError(f"model_setup({model_type!r}) gave {arch!r}, not {architecture!r}")
    hyper.update(
        batch_size=scenario["batch_size"],
        channel_sizes=scenario["channels"],
        hidden_layer=scenario["fc_hidden"],
        kernel_sizes=[k for k in scenario["kernels"] for _ in range(2)],
        stride_sizes=[1] * (2 * layers),
        pooling_size=[p for p in scenario["pools"] for _ in range(2)],
    )
    npz = np.load(data_dir / "tasks.npz")
    split = {s: [] for s in SPLITS}
    for k in range(scenario["num_tasks"]):
        for s in SPLITS:
            x, y = npz[f"x_{s}_{k}"], npz[f"y_{s}_{k}"]
            split[s].append((x.reshape(len(x), -1).astype(np.float32), y.astype(np.float32)))
    dataset = [[split["train"]], [split["val"]], split["test"]]
    os.chdir(args.out_dir)  # It writes ./Result/<mat file>.
    os.makedirs("Result", exist_ok=True)
    start = time.perf_counter()
    saved = wrapper.train_run_for_each_model(
        arch,
        hyper,
        _train_hyperpara(scenario, args.epochs_per_task),
        dataset,
        "cifar100_10",
        "reference_e2e.mat",
        True,
        doLifelong=True,
    )
    train_s = time.perf_counter() - start
    summary = saved[-1]
    run = summary["result_of_each_run"][0]
    peak = [float(a) for a in summary["best_test_error_each_task"][0]]  # Accuracies.
    sharing = run.get("conv_sharing") or [hyper["conv_sharing"]] * len(peak)  # Static: fixed.
    result = {
        "train_s": train_s,
        "own_training_time_s": float(run["training_time"]),
        "epochs": int(run["num_epoch"]),
        "num_tasks": len(run["history_test_error"][-1]) - 1,  # Per task, then the mean.
        "sizes": [[len(split[s][k][1]) for s in SPLITS] for k in range(len(split["train"]))],
        "peak_test_acc": peak,
        "mean_peak_accuracy": statistics.mean(peak),
        "final_test_acc": [float(a) for a in summary["test_error_at_last_epoch"][0]],
        "conv_sharing": [[bool(b) for b in c] for c in sharing],
        "threaded_tf_configs": len(pinned),
        "tf_version": tf1.__version__,
    }
    pathlib.Path(args.out).write_text(json.dumps(result, indent=1))


def _reference_round(args: argparse.Namespace, method: str, tmp: pathlib.Path) -> dict:
    """One reference run in a ``--worker`` subprocess; adds its whole-process ``wall_s``."""
    out_dir = pathlib.Path(tempfile.mkdtemp(prefix=f"ref_{method}_", dir=tmp))
    cmd = [args.tf_python, str(pathlib.Path(__file__).resolve()), "--worker"]
    cmd += [f"--reference={args.reference}", f"--data={tmp / 'data'}", f"--method={method}"]
    cmd += [f"--out={out_dir / 'result.json'}", f"--out_dir={out_dir}"]
    cmd += [f"--threads={args.threads}", f"--epochs_per_task={args.epochs_per_task}"]
    env = rt1._child_env(args.threads)
    start = time.perf_counter()
    rt1._run(cmd, rt1._pinned_cpus(args.threads), env, f"reference {method}")
    wall = time.perf_counter() - start
    return {**json.loads((out_dir / "result.json").read_text()), "wall_s": wall}


def _jax_round(args: argparse.Namespace, method: str, tmp: pathlib.Path) -> dict:
    """One ``launch.train`` run in a fresh workdir; its results.json's fields and ``wall_s``."""
    workdir = pathlib.Path(tempfile.mkdtemp(prefix=f"jax_{method}_", dir=tmp))
    cmd = [args.jax_python, "-m", "launch.train", "--config=configs/default.py"]
    cmd += [f"--workdir={workdir}", f"--config.train.epochs_per_task={args.epochs_per_task}"]
    cmd += METHODS[method][2]
    if args.jax_compilation_cache is not None:
        cmd.append(f"--compilation_cache={args.jax_compilation_cache}")
    start = time.perf_counter()
    rt1._run(cmd, rt1._pinned_cpus(args.threads), rt1._child_env(args.threads), "launch.train")
    wall = time.perf_counter() - start
    results = json.loads((workdir / "results.json").read_text())
    keys = ("train_seconds", "mean_peak_accuracy", "mean_final_accuracy", "chosen_configs")
    return {**{k: results[k] for k in keys}, "num_tasks": results["num_tasks"], "wall_s": wall}


def summarise(rounds: Sequence[dict], methods: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per method: medians over rounds of both sides' times and accuracies, and jax/ref ratios."""
    medians = {}
    for m in methods:

        def med(side: str, key: str, m: str = m) -> float:
            return statistics.median(r[m][side][key] for r in rounds)

        row = {
            "jax_wall_s": med("jax", "wall_s"),
            "ref_wall_s": med("ref", "wall_s"),
            "jax_train_s": med("jax", "train_seconds"),
            "ref_train_s": med("ref", "train_s"),
            "jax_peak_acc": med("jax", "mean_peak_accuracy"),
            "ref_peak_acc": med("ref", "mean_peak_accuracy"),
        }
        row["wall_ratio"] = row["jax_wall_s"] / row["ref_wall_s"]
        row["train_ratio"] = row["jax_train_s"] / row["ref_train_s"]
        medians[m] = row
    return medians


def format_table(medians: dict[str, dict[str, float]]) -> str:
    """The per-method medians as a markdown table."""
    lines = [
        "| method | lasem_jax wall s | reference wall s | wall jax/ref | lasem_jax train s "
        "| reference train s | train jax/ref | peak acc jax / ref |",
        "|---|---|---|---|---|---|---|---|",
    ]
    names = {"lasem": "LASEM (HPS)", "static": "static all (HPS)"}
    for m, r in medians.items():
        lines.append(
            f"| {names[m]} | {r['jax_wall_s']:.1f} | {r['ref_wall_s']:.1f} | {r['wall_ratio']:.2f} "
            f"| {r['jax_train_s']:.1f} | {r['ref_train_s']:.1f} | {r['train_ratio']:.2f} "
            f"| {r['jax_peak_acc']:.3f} / {r['ref_peak_acc']:.3f} |"
        )
    return "\n".join(lines)


def run_driver(args: argparse.Namespace) -> None:
    """Prepares the tasks, alternates both sides per method and round, prints the table."""
    reference = pathlib.Path(args.reference).resolve()
    if not (reference / "classification" / "train_wrapper.py").is_file():
        raise SystemExit(f"--reference={args.reference} is not a LASEM checkout")
    args.reference = str(reference)
    rounds: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="lasem_e2e_") as tmp_name:
        tmp = pathlib.Path(tmp_name)
        (tmp / "data").mkdir()
        cmd = [args.jax_python, str(pathlib.Path(__file__).resolve()), "--dump_data"]
        cmd += [f"--out={tmp / 'data'}", f"--reference={args.reference}"]
        rt1._run(cmd, None, rt1._child_env(0), "task preparation")
        scenario = json.loads((tmp / "data" / "scenario.json").read_text())
        for i in range(args.rounds):
            rounds.append({})
            for m in args.methods:
                sides = [("ref", _reference_round), ("jax", _jax_round)]
                for side, run in sides if i % 2 == 0 else sides[::-1]:
                    rounds[-1].setdefault(m, {})[side] = run(args, m, tmp)
                got = rounds[-1][m]
                if not got["ref"]["num_tasks"] == got["jax"]["num_tasks"] == len(scenario["sizes"]):
                    raise SystemExit(f"task counts differ: {got}")
                if got["ref"]["sizes"] != scenario["sizes"]:
                    raise SystemExit(f"reference sizes {got['ref']['sizes']} != prepared")
                if got["ref"]["epochs"] != len(scenario["sizes"]) * args.epochs_per_task:
                    raise SystemExit(f"the reference trained {got['ref']['epochs']} epochs")
                print(
                    f"round {i + 1}/{args.rounds} {m}: wall jax {got['jax']['wall_s']:.1f} s, "
                    f"ref {got['ref']['wall_s']:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
    medians = summarise(rounds, args.methods)
    cpus = rt1._pinned_cpus(args.threads)
    machine = {
        "cpu": rt1.cpu_model(),
        "cores": os.cpu_count(),
        "pinned_cpus": cpus,
        "tf_version": rounds[0][args.methods[0]]["ref"]["tf_version"],
        "jax_version": scenario["jax_version"],
        "python": platform.python_version(),
    }
    sizes = "/".join(str(n) for n in scenario["sizes"][0])
    print(
        f"CPU: {machine['cpu']}, {machine['cores']} cores, pinned to {cpus or 'all'}; "
        f"threads={args.threads}; TensorFlow {machine['tf_version']} (tf.compat.v1); "
        f"jax {machine['jax_version']}\n{scenario['num_tasks']} digits tasks x {sizes} "
        f"train/val/test (both sides), {args.epochs_per_task} epochs/task, batch "
        f"{scenario['batch_size']}, channels {scenario['channels']}, FC {scenario['fc_hidden']}; "
        f"median of {args.rounds} alternating round(s). wall: whole subprocess; train: "
        "lasem_jax train_seconds, reference time around train_run_for_each_model (sleep "
        "patched out); peak acc: mean over tasks of test accuracy at the best validation epoch\n"
    )
    print(format_table(medians))
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k in SETTINGS}
        payload = {"machine": machine, "settings": settings, "scenario": scenario}
        payload.update(rounds=rounds, medians=medians)
        pathlib.Path(args.json).write_text(json.dumps(payload, indent=1))
        print(f"\nwrote {args.json}")


SETTINGS = ("reference", "tf_python", "jax_python", "rounds", "threads", "epochs_per_task")
SETTINGS += ("methods", "jax_compilation_cache")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line arguments of the driver and of the ``--worker`` / ``--dump_data`` modes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--reference", required=True, help="Path of the LASEM TF1 checkout.")
    parser.add_argument("--tf_python", default=sys.executable, help="Python with TensorFlow.")
    parser.add_argument(
        "--jax_python", default=str(REPO_ROOT / ".venv" / "bin" / "python"), help="lasem_jax's."
    )
    parser.add_argument("--rounds", type=int, default=3, help="Alternating rounds.")
    parser.add_argument("--threads", type=int, default=2, help="Pinned cores and TF threads.")
    parser.add_argument("--epochs_per_task", type=int, default=30, help="Both sides.")
    parser.add_argument(
        "--methods",
        type=lambda s: [x for x in s.split(",") if x],
        default=list(METHODS),
        help="Comma-separated: lasem, static (all layers transfer).",
    )
    parser.add_argument(
        "--jax_compilation_cache",
        default=None,
        help="Passed to launch.train as --compilation_cache (unset: its default persistent "
        "cache; empty: off, every lasem_jax run compiles).",
    )
    parser.add_argument("--json", default=None, help="Write the raw rounds and medians here.")
    for hidden in ("--out", "--out_dir", "--data", "--method"):
        parser.add_argument(hidden, default=None, help=argparse.SUPPRESS)
    for mode in ("--worker", "--dump_data"):
        parser.add_argument(mode, action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if unknown := sorted(set(args.methods) - set(METHODS)):
        parser.error(f"unknown methods {unknown}; choose from {sorted(METHODS)}")
    if args.rounds < 1 or args.epochs_per_task < 1:
        parser.error("--rounds and --epochs_per_task must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: the driver, or one of the subprocess modes."""
    args = parse_args(argv)
    if args.dump_data:
        dump_data(args)
    elif args.worker:
        run_worker(args)
    else:
        run_driver(args)


if __name__ == "__main__":
    main()
