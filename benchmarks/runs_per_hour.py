"""Runs per hour of a static sweep and of a brute-force search: one after another vs batched.

Each variant runs as its own launcher subprocess on a fresh workdir (start-up and compilation
included, as a user meets them: the persistent compilation cache is off, or, with --warm, filled
by an untimed first round); "4 devices" sets
XLA_FLAGS=--xla_force_host_platform_device_count=4, which splits the CPU into 4 virtual devices
(on a GPU machine, pass --devices to use real ones). The variants alternate within each of
--rounds rounds (a shared machine drifts); the table gives medians:

  python benchmarks/runs_per_hour.py --configs=all,none,top1,top2,bottom1,alternating \
      --seeds=0,1 --num_tasks=5 --jobs=sweep --rounds=3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(command: list[str], env: dict[str, str]) -> float:
    """Seconds one launcher subprocess takes; raises if it fails."""
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def main() -> None:
    """Times each variant and prints a markdown table of runs per hour."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/default.py")
    parser.add_argument("--config_arg", default="tiny", help="e.g. tiny, or '' for the full one")
    parser.add_argument("--configs", default="paper", help="static configurations of the sweep")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--num_tasks", type=int, default=2)
    parser.add_argument("--devices", type=int, default=4, help="virtual CPU devices")
    parser.add_argument("--rounds", type=int, default=1, help="alternating timed rounds")
    parser.add_argument("--jobs", default="sweep,brute force", help="which jobs to time")
    parser.add_argument("--warm", action="store_true", help="time with a filled compile cache")
    args = parser.parse_args()
    config = f"--config={args.config}" + (f":{args.config_arg}" if args.config_arg else "")
    base = [sys.executable, "-m"]
    common = [config, f"--config.data.num_tasks={args.num_tasks}"]
    sweep = [*base, "launch.sweep", *common, f"--configs={args.configs}", f"--seeds={args.seeds}"]
    search = [*base, "launch.train", *common, "--config.method=brute_force"]
    plain = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    split = {**plain, "XLA_FLAGS": f"--xla_force_host_platform_device_count={args.devices}"}
    num_runs = len(args.configs.split(",")) if args.configs != "paper" else 9
    num_runs *= len(args.seeds.split(","))
    variants = [
        ("sweep", "one after another", [*sweep, "--nobatch_runs"], plain, num_runs),
        ("sweep", "batched, 1 device", sweep, plain, num_runs),
        ("sweep", f"batched, {args.devices} devices", sweep, split, num_runs),
        (
            "brute force",
            "one after another",
            [*search, "--config.brute_force.batch_candidates=1"],
            plain,
            1,
        ),
        ("brute force", "batched, 1 device", search, plain, 1),
        ("brute force", f"batched, {args.devices} devices", search, split, 1),
    ]
    variants = [v for v in variants if v[0] in args.jobs.split(",")]
    seconds: dict[int, list[float]] = {i: [] for i in range(len(variants))}
    with tempfile.TemporaryDirectory() as tmp:
        cache = f"--compilation_cache={tmp}/cache" if args.warm else "--compilation_cache="
        for r in range(args.rounds + int(args.warm)):
            for i, (what, how, command, env, runs) in enumerate(variants):
                took = timed([*command, cache, f"--workdir={tmp}/{r}_{i}"], env)
                if args.warm and r == 0:
                    continue  # the untimed round that fills the cache
                seconds[i].append(took)
                print(f"{what}, {how}: {runs} run(s) in {took:.1f} s", flush=True)
    cached = "filled" if args.warm else "off"
    print(
        f"\n{config}, {args.num_tasks} task(s); --configs={args.configs} --seeds={args.seeds}; "
        f"median of {args.rounds} alternating round(s); compilation cache {cached}"
    )
    print("| job | how | runs | seconds (median) | runs per hour | vs one after another |")
    print("|---|---|---|---|---|---|")
    first: dict[str, float] = {}
    for i, (what, how, _, _, runs) in enumerate(variants):
        median = statistics.median(seconds[i])
        first.setdefault(what, median)
        speed = f"{first[what] / median:.2f}x"
        print(f"| {what} | {how} | {runs} | {median:.1f} | {3600 * runs / median:.0f} | {speed} |")


if __name__ == "__main__":
    main()
