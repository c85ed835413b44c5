"""Runs per hour of a static sweep and of a brute-force search: one after another vs batched.

Each variant runs as its own launcher subprocess on a fresh workdir (start-up and compilation
included, as a user meets them); "4 devices" sets
XLA_FLAGS=--xla_force_host_platform_device_count=4, which splits the CPU into 4 virtual devices
(on a GPU machine, pass --devices to use real ones):

  python benchmarks/runs_per_hour.py --configs=paper --seeds=0,1,2 --config_arg=tiny
"""

from __future__ import annotations

import argparse
import os
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
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (what, how, command, env, runs) in enumerate(variants):
            seconds = timed([*command, f"--workdir={tmp}/{i}"], env)
            rows.append((what, how, runs, seconds))
            print(f"{what}, {how}: {runs} run(s) in {seconds:.1f} s", flush=True)
    print(f"\n{config}, {args.num_tasks} task(s); --configs={args.configs} --seeds={args.seeds}")
    print("| job | how | runs | seconds | runs per hour |")
    print("|---|---|---|---|---|")
    for what, how, runs, seconds in rows:
        print(f"| {what} | {how} | {runs} | {seconds:.1f} | {3600 * runs / seconds:.0f} |")


if __name__ == "__main__":
    main()
