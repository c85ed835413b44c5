"""JSON bookkeeping of `benchmarks/gpu_check.sh`: step records, CPU-vs-GPU numerics, summary.

Standard library only (only `probe` imports jax and the project's dependencies, to report
them), so it works before the wheels are installed, or without them. Subcommands:

  python benchmarks/gpu_check_compare.py missing --wheels=.whl
      Prints the distributions with a wheel in .whl/ that this interpreter lacks, one a line.
  python benchmarks/gpu_check_compare.py unpack --wheels=.whl --target=DIR NAME...
      Without pip: extracts, for each named distribution, the .whl/ wheel that fits this
      interpreter into DIR (wheels are zip files laid out for site-packages).
  python benchmarks/gpu_check_compare.py probe
      Prints the interpreter's Python, package versions, jax backend and devices as JSON.
  python benchmarks/gpu_check_compare.py step --name=NAME --rc=RC --seconds=S --timeout=T \
      --log=STDERR_FILE --out=FILE [--embed=KEY=JSON_FILE ...] [--runs=N] [--set=KEY=VALUE ...]
      [--count_results=DIR]
      Writes one step's record: status (ok / failed / timeout / skipped), rc, wall seconds,
      the last lines of its stderr when it did not succeed, embedded JSON files, runs per hour,
      finished runs.
  python benchmarks/gpu_check_compare.py compare --gpu=results.json --cpu=results.json \
      --out=FILE [--matmul_precision=P]
      Writes the max absolute differences of the two runs' accuracies and priors and whether
      their chosen configurations are equal.
  python benchmarks/gpu_check_compare.py summary --dir=OUT
      Combines every step record in OUT into OUT/summary.json.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import math
import os
import re
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from typing import Any

STDERR_TAIL_LINES = 25
# Modules the check's launchers import beyond jax, flax, optax, chex and absl (probe tries each).
IMPORTS_NEEDED = ("ml_collections", "sklearn.datasets", "matplotlib.figure", "lasem_jax")
# Fields of a run's results.json copied into the step records (the rest is in the copied file).
RESULT_FIELDS = (
    "method",
    "learner",
    "dataset",
    "num_tasks",
    "seed",
    "matmul_precision",
    "mean_peak_accuracy",
    "mean_final_accuracy",
    "mean_forgetting_ratio",
    "bwt",
    "chosen_configs",
    "num_devices",
    "num_parameters",
    "train_seconds",
)
# Accuracy fields compared between the CPU and the GPU run: lists or matrices of floats.
ACCURACY_FIELDS = (
    "peak_accuracy",
    "final_accuracy",
    "accuracy_matrix",
    "accuracy_matrix_last_epoch",
    "mean_peak_accuracy",
    "mean_final_accuracy",
)


def write_json(path: str, data: Any) -> None:
    """Writes `data` as indented JSON to `path` atomically (temporary file, then rename).

    Args:
      path: the destination file; its directory is created if needed.
      data: any JSON-serialisable value (NaN and infinities are written as null).
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=directory, delete=False, suffix=".tmp") as f:
        json.dump(_finite(data), f, indent=2)
        f.write("\n")
    os.chmod(f.name, 0o644)
    os.replace(f.name, path)


def _finite(value: Any) -> Any:
    """Returns `value` with non-finite floats replaced by None (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def read_json(path: str) -> Any:
    """Returns the JSON in `path`, or None where it is missing or not valid JSON."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def tail(path: str | None, lines: int = STDERR_TAIL_LINES) -> list[str]:
    """The last `lines` lines of a text file (empty if it is missing)."""
    if not path:
        return []
    try:
        with open(path, errors="replace") as f:
            return [line.rstrip("\n") for line in f.readlines()[-lines:]]
    except OSError:
        return []


def normalise(name: str) -> str:
    """A distribution name in normal form (PEP 503): `scikit_learn` -> `scikit-learn`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_distribution(filename: str) -> str:
    """The normalised distribution name of a wheel file, e.g. `scikit-learn`."""
    return normalise(os.path.basename(filename).split("-")[0])


def missing_distributions(wheel_dir: str) -> list[str]:
    """Distributions with a wheel in `wheel_dir` that the running interpreter does not have.

    Args:
      wheel_dir: a directory of `.whl` files.

    Returns:
      Sorted normalised distribution names.
    """
    names = {wheel_distribution(f) for f in os.listdir(wheel_dir) if f.endswith(".whl")}
    missing = []
    for name in sorted(names):
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def wheel_fits(filename: str) -> bool:
    """Whether a wheel's tags fit this CPython on Linux x86_64 (pure or compiled for it)."""
    parts = os.path.basename(filename)[: -len(".whl")].split("-")
    pythons, abis, platforms = (set(p.split(".")) for p in parts[-3:])
    cp = f"cp{sys.version_info.major}{sys.version_info.minor}"
    python_ok = bool(pythons & {cp, "py3", f"py{sys.version_info.major}{sys.version_info.minor}"})
    abi_ok = bool(abis & {cp, "none", "abi3"})
    platform_ok = "any" in platforms or any(
        p.startswith(("manylinux", "linux")) and p.endswith("x86_64") for p in platforms
    )
    return python_ok and abi_ok and platform_ok


def unpack_wheels(wheel_dir: str, target: str, names: Iterable[str]) -> tuple[list[str], list[str]]:
    """Extracts the fitting wheel of each named distribution into `target` (pip-less install).

    Args:
      wheel_dir: a directory of `.whl` files.
      target: the directory to extract into (put it on PYTHONPATH).
      names: distribution names (any spelling: `scikit_learn`, `scikit-learn`).

    Returns:
      The wheel files extracted, and the names with no wheel that fits this interpreter (the
      others are extracted all the same).
    """
    os.makedirs(target, exist_ok=True)
    wheels = sorted(f for f in os.listdir(wheel_dir) if f.endswith(".whl"))
    done, unfit = [], []
    for name in names:
        fits = [f for f in wheels if wheel_distribution(f) == normalise(name) and wheel_fits(f)]
        if not fits:
            unfit.append(name)
            continue
        with zipfile.ZipFile(os.path.join(wheel_dir, fits[-1])) as z:
            z.extractall(target)
        done.append(fits[-1])
    return done, unfit


def probe() -> dict[str, Any]:
    """The interpreter, its packages' versions and jax's backend and devices.

    Returns:
      `python`, `executable`, `cpu_count`, `versions` (package -> version or None),
      `import_errors` (module of `IMPORTS_NEEDED` -> error; empty if all import), and
      `jax_backend`, `jax_devices` and `device_kind`, or `jax_error` where jax fails.
    """
    versions = {}
    for name in (
        "jax",
        "jaxlib",
        "flax",
        "optax",
        "chex",
        "absl-py",
        "numpy",
        "scipy",
        "orbax-checkpoint",
        "ml-collections",
        "scikit-learn",
        "matplotlib",
    ):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    import_errors = {}
    for module in IMPORTS_NEEDED:
        try:
            importlib.import_module(module)
        except Exception as e:  # Recorded: the steps needing it will fail and say so too.
            import_errors[module] = f"{type(e).__name__}: {e}"
    out: dict[str, Any] = {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "cpu_count": os.cpu_count(),
        "versions": versions,
        "import_errors": import_errors,
    }
    try:
        import jax  # Only here: the other subcommands need no jax.

        devices = jax.devices()
        out["jax_backend"] = jax.default_backend()
        out["jax_devices"] = [str(d) for d in devices]
        out["device_kind"] = devices[0].device_kind
    except Exception as e:  # Reported, not raised: the check goes on and records it.
        out["jax_error"] = f"{type(e).__name__}: {e}"
    return out


def parse_pairs(pairs: Iterable[str] | None) -> list[tuple[str, str]]:
    """Splits `KEY=VALUE` strings into pairs; raises SystemExit on one without `=`."""
    out = []
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"expected KEY=VALUE, got {pair!r}")
        out.append((key, value))
    return out


def parse_value(text: str) -> Any:
    """`text` as JSON where it parses (numbers, booleans, null, lists), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def step_record(
    name: str,
    rc: int | None,
    seconds: float | None,
    timeout: float | None,
    log: str | None,
    embed: Sequence[tuple[str, str]] = (),
    runs: int | None = None,
    extra: Sequence[tuple[str, str]] = (),
    count_results: str | None = None,
) -> dict[str, Any]:
    """One step's record.

    Args:
      name: the step's name.
      rc: the command's exit status; None if the step was skipped; 124 or 137 (from
        `timeout`) mean it ran out of time.
      seconds: its wall time.
      timeout: its time limit in seconds.
      log: its stderr file; the last lines go into the record unless it succeeded.
      embed: `(key, path)` pairs: JSON files put into the record under `key`; a results.json
        is reduced to `RESULT_FIELDS`. A missing file gives None.
      runs: the number of training runs the command made; adds `runs_per_hour`.
      extra: `(key, value)` pairs added as they are (values parsed as JSON where they parse).
      count_results: a directory; adds `runs_finished`, the number of results.json under it.

    Returns:
      The record: `step`, `status` (ok, failed, timeout or skipped), `rc`, `seconds`,
      `timeout_s`, the embedded and extra keys, `runs` and `runs_per_hour` where given, and
      `stderr_tail` where the status is not ok.
    """
    if rc is None:
        status = "skipped"
    elif rc == 0:
        status = "ok"
    elif rc in (124, 137):
        status = "timeout"
    else:
        status = "failed"
    record: dict[str, Any] = {
        "step": name,
        "status": status,
        "rc": rc,
        "seconds": None if seconds is None else round(seconds, 3),
        "timeout_s": timeout,
    }
    for key, path in embed:
        data = read_json(path)
        if isinstance(data, dict) and "accuracy_matrix" in data:  # A results.json.
            data = {k: data.get(k) for k in RESULT_FIELDS}
        record[key] = data
    if runs is not None:
        record["runs"] = runs
        ok = status == "ok" and seconds
        record["runs_per_hour"] = round(3600 * runs / seconds, 1) if ok else None
    for key, value in extra:
        record[key] = parse_value(value)
    if count_results is not None:
        record["runs_finished"] = sum(
            "results.json" in files for _, _, files in os.walk(count_results)
        )
    if status != "ok":
        record["stderr_tail"] = tail(log)
    return record


def _flatten(value: Any) -> list[float | None]:
    """The numbers (and None entries) of a scalar, list or nested list, in order."""
    if isinstance(value, list | tuple):
        return [x for v in value for x in _flatten(v)]
    return [None if value is None else float(value)]


def max_abs_diff(a: Any, b: Any) -> float | None:
    """The largest `|a_i - b_i|` over two equally shaped (nested) lists; None entries skipped.

    Returns:
      The maximum, 0.0 when no entry is numeric on both sides, or None when the shapes differ
      or a side is missing.
    """
    if a is None or b is None:
        return None
    fa, fb = _flatten(a), _flatten(b)
    if len(fa) != len(fb):
        return None
    diffs = [abs(x - y) for x, y in zip(fa, fb, strict=True) if x is not None and y is not None]
    return max(diffs, default=0.0)


def compare_results(
    gpu: dict[str, Any] | None, cpu: dict[str, Any] | None, matmul_precision: str | None
) -> dict[str, Any]:
    """CPU-vs-GPU numerics of the same run.

    Args:
      gpu: the GPU run's results.json (None if the run failed).
      cpu: the CPU run's results.json (None if the run failed).
      matmul_precision: the `train.matmul_precision` passed to both runs, or None.

    Returns:
      `comparable` (both runs finished), `max_abs_accuracy_diff` (over every accuracy field),
      `max_abs_diff` per accuracy field and for `prior_history`, `chosen_configs_equal`, both
      sides' chosen configurations and mean accuracies, and the matmul precision.
    """
    comparable = gpu is not None and cpu is not None
    out: dict[str, Any] = {
        "step": "numerics",
        "status": "ok" if comparable else "failed",
        "comparable": comparable,
        "matmul_precision_flag": matmul_precision,
    }
    if not comparable:
        missing = " and ".join(side for side, r in (("GPU", gpu), ("CPU", cpu)) if r is None)
        out["reason"] = f"the {missing} run wrote no results.json"
        return out
    per_field = {f: max_abs_diff(gpu.get(f), cpu.get(f)) for f in ACCURACY_FIELDS}
    known = [d for d in per_field.values() if d is not None]
    out["max_abs_accuracy_diff"] = max(known) if known else None
    out["max_abs_diff"] = {
        **per_field,
        "prior_history": max_abs_diff(gpu.get("prior_history"), cpu.get("prior_history")),
    }
    out["chosen_configs_equal"] = gpu.get("chosen_configs") == cpu.get("chosen_configs")
    for side, r in (("gpu", gpu), ("cpu", cpu)):
        out[side] = {
            k: r.get(k)
            for k in (
                "chosen_configs",
                "mean_peak_accuracy",
                "mean_final_accuracy",
                "matmul_precision",
                "train_seconds",
            )
        }
    return out


# Step records in the order summary.json lists them (others found in the directory follow).
SUMMARY_ORDER = (
    "env",
    "benchmark_hps",
    "benchmark_tf",
    "benchmark_dfcnn",
    "first_command",
    "sweep_batched",
    "sweep_sequential",
    "numerics_gpu",
    "numerics_cpu",
    "numerics",
)


def summarise(out_dir: str) -> dict[str, Any]:
    """Combines the step records of `out_dir` (every `*.json` but summary.json and copies).

    Returns:
      `steps` (name -> record, in `SUMMARY_ORDER`), `status` (name -> status), and
      `highlights`: per learner the LASEM / static time ratio, the first command's wall time
      and accuracies, the sweep's runs per hour both ways and the batched speed-up, and the
      numerics verdict.
    """
    names = [
        f[: -len(".json")]
        for f in os.listdir(out_dir)
        if f.endswith(".json") and f != "summary.json" and not f.endswith("_results.json")
    ]
    order = [n for n in SUMMARY_ORDER if n in names] + sorted(set(names) - set(SUMMARY_ORDER))
    steps = {n: read_json(os.path.join(out_dir, f"{n}.json")) for n in order}
    status = {n: (s or {}).get("status", "unreadable") for n, s in steps.items()}
    highlights: dict[str, Any] = {}
    for learner in ("hps", "tf", "dfcnn"):
        rows = (steps.get(f"benchmark_{learner}") or {}).get("result") or {}
        row = rows.get(learner) if isinstance(rows, dict) else None
        if row and row.get("static_ms"):
            highlights[f"benchmark_{learner}"] = {
                "static_ms": row["static_ms"],
                "lasem_ms": row["lasem_ms"],
                "time_ratio": round(row["lasem_ms"] / row["static_ms"], 3),
                "flop_ratio": row.get("flop_ratio"),
            }
    first = steps.get("first_command") or {}
    if first.get("status") == "ok":
        result = first.get("result") or {}
        highlights["first_command"] = {
            "wall_seconds": first.get("seconds"),
            **{
                k: result.get(k)
                for k in ("train_seconds", "mean_peak_accuracy", "mean_final_accuracy")
            },
        }
    batched, sequential = steps.get("sweep_batched") or {}, steps.get("sweep_sequential") or {}
    if batched.get("runs_per_hour") or sequential.get("runs_per_hour"):
        b, s = batched.get("runs_per_hour"), sequential.get("runs_per_hour")
        highlights["sweep"] = {
            "runs": batched.get("runs") or sequential.get("runs"),
            "batched_seconds": batched.get("seconds") if b else None,
            "sequential_seconds": sequential.get("seconds") if s else None,
            "batched_runs_per_hour": b,
            "sequential_runs_per_hour": s,
            "batched_speedup": round(b / s, 3) if b and s else None,
        }
    numerics = steps.get("numerics") or {}
    probe_result = (steps.get("env") or {}).get("probe") or {}
    if numerics.get("comparable"):
        highlights["numerics"] = {
            k: numerics.get(k)
            for k in ("max_abs_accuracy_diff", "chosen_configs_equal", "matmul_precision_flag")
        }
        # The "GPU" run used jax's default backend: "cpu" here means CPU against CPU.
        highlights["numerics"]["default_backend"] = probe_result.get("jax_backend")
    return {
        "device_kind": probe_result.get("device_kind"),
        "backend": probe_result.get("jax_backend"),
        "devices": probe_result.get("jax_devices"),
        "versions": probe_result.get("versions"),
        "status": status,
        "highlights": highlights,
        "steps": steps,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Parses the subcommand and runs it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("missing", help="wheels whose distribution is not installed")
    p.add_argument("--wheels", required=True)
    p = sub.add_parser("unpack", help="extract wheels without pip")
    p.add_argument("--wheels", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("names", nargs="+")
    sub.add_parser("probe", help="Python, package versions, jax backend and devices")
    p = sub.add_parser("step", help="write one step's record")
    p.add_argument("--name", required=True)
    p.add_argument("--rc", type=int, default=None, help="exit status; omit for a skipped step")
    p.add_argument("--seconds", type=float, default=None)
    p.add_argument("--timeout", type=float, default=None)
    p.add_argument("--log", default=None, help="the step's stderr file")
    p.add_argument("--embed", action="append", help="KEY=JSON_FILE, repeatable")
    p.add_argument("--runs", type=int, default=None)
    p.add_argument("--count_results", default=None, help="count results.json files under DIR")
    p.add_argument("--set", action="append", dest="extra", help="KEY=VALUE, repeatable")
    p.add_argument("--out", required=True)
    p = sub.add_parser("compare", help="CPU-vs-GPU numerics of two results.json")
    p.add_argument("--gpu", required=True)
    p.add_argument("--cpu", required=True)
    p.add_argument("--matmul_precision", default=None)
    p.add_argument("--out", required=True)
    p = sub.add_parser("summary", help="combine the step records into summary.json")
    p.add_argument("--dir", required=True)
    args = parser.parse_args(argv)

    if args.command == "missing":
        print("\n".join(missing_distributions(args.wheels)))
    elif args.command == "unpack":
        done, unfit = unpack_wheels(args.wheels, args.target, args.names)
        for wheel in done:
            print(f"unpacked {wheel}")
        if unfit:
            raise SystemExit(f"no wheel fits Python {sys.version.split()[0]}: {' '.join(unfit)}")
    elif args.command == "probe":
        print(json.dumps(probe(), indent=2))
    elif args.command == "step":
        record = step_record(
            args.name,
            args.rc,
            args.seconds,
            args.timeout,
            args.log,
            parse_pairs(args.embed),
            args.runs,
            parse_pairs(args.extra),
            args.count_results,
        )
        write_json(args.out, record)
        print(f"{args.name}: {record['status']} (rc {args.rc}, {record['seconds']} s)")
    elif args.command == "compare":
        result = compare_results(
            read_json(args.gpu), read_json(args.cpu), args.matmul_precision or None
        )
        write_json(args.out, result)
        print(
            "numerics: "
            + (
                f"max |GPU - CPU| accuracy {result['max_abs_accuracy_diff']}, chosen configs "
                f"equal: {result['chosen_configs_equal']}"
                if result["comparable"]
                else result["reason"]
            )
        )
    else:
        summary = summarise(args.dir)
        write_json(os.path.join(args.dir, "summary.json"), summary)
        print(json.dumps({k: summary[k] for k in ("status", "highlights")}, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
