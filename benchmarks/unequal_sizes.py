"""Compiles and seconds per run for tasks of unequal training sizes, padded vs unpadded.

Builds the `:tiny` digits tasks, cuts their training sets to `--sizes` images (default 60, 70,
80 and 60, as Office-Home's tasks differ in size), and trains one LASEM run on them with
`config.train.pad_tasks` off and on, each in its own subprocess (a fresh process: no compiled
program shared), alternating over `--rounds`. Each prints how many times `steps.train_epoch`
was traced (one compile per trace) and the run's `train_seconds`; the table gives medians:

  python benchmarks/unequal_sizes.py --rounds=3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def one_run(sizes: list[int], pad: bool) -> dict:
    """Trains the run in this process; returns its traces of `train_epoch` and seconds."""
    sys.path.insert(0, ROOT)
    import jax

    from configs import default
    from lasem_jax.data import make_tasks
    from lasem_jax.engine import lockstep, steps
    from lasem_jax.training import trainer

    config = default.get_config("tiny")
    config.data.num_tasks = len(sizes)
    config.train.pad_tasks = pad
    tasks = make_tasks(config.data, seed=0)
    tasks = [
        dataclasses.replace(t, x_train=t.x_train[:n], y_train=t.y_train[:n])
        for t, n in zip(tasks, sizes, strict=True)
    ]
    traces = []

    def counted(*args: object) -> object:
        traces.append(1)  # runs once per trace, not per call
        return steps.train_epoch(*args)

    lockstep.jitted_train_epoch = jax.jit(counted, static_argnums=(0, 1))
    results = trainer.train_lifelong(tasks, config)
    return {"traces": len(traces), "seconds": results["train_seconds"]}


def main() -> None:
    """Alternates the two settings over rounds and prints a markdown table of medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="60,70,80,60")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=["pad", "nopad"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.child:
        print(json.dumps(one_run(sizes, args.child == "pad")))
        return
    found: dict[str, list[dict]] = {"nopad": [], "pad": []}
    for _ in range(args.rounds):
        for how in found:
            command = [sys.executable, __file__, f"--sizes={args.sizes}", f"--child={how}"]
            out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
            found[how].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"LASEM, `:tiny` digits, training sizes {sizes}; medians of {args.rounds} rounds")
    print("| `train.pad_tasks` | compiles of the epoch | train_seconds |")
    print("|---|---|---|")
    for how, runs in found.items():
        traces = statistics.median(r["traces"] for r in runs)
        seconds = statistics.median(r["seconds"] for r in runs)
        print(f"| {how == 'pad'} | {traces:g} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
