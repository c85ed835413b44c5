"""What a checkpoint costs the training thread at the first epoch and deep into a long run.

Builds the LASEM run state of a config (default: the embedded digits scenario's network) at
global epoch 1 (task 1 of T, epoch 1) and at the last epochs of a run of `--epochs` epochs
spread over the config's tasks, with the per-epoch records such a run has (synthesized:
random accuracies and priors, the fields the trainer writes) in `metrics.jsonl`. For each
point it times what the trainer's training thread waits for (`run_state.to_checkpoint` and
`CheckpointStore.save_async`: the host copy of the arrays), the background write itself
(`CheckpointStore.save`), the checkpoint's JSON size, and reading its records back at resume;
for comparison, the blocking write and JSON size of the layout before `num_records` (records
and prior history in the JSON); and one record's append to `metrics.jsonl`. Prints medians
over `--repeats`:

  python benchmarks/checkpoint_cost.py --epochs=10000 --repeats=9
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence

import jax
import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from lasem_jax.config import run_config
from lasem_jax.data import make_tasks
from lasem_jax.engine import steps
from lasem_jax.networks.model import Model
from lasem_jax.storage import checkpoint, results_io, tree_io
from lasem_jax.training import run_state

_CONFIG = config_flags.DEFINE_config_file("config", "configs/default.py", "Run configuration.")
_EPOCHS = flags.DEFINE_integer("epochs", 10_000, "Length of the long run, in epochs.")
_REPEATS = flags.DEFINE_integer("repeats", 9, "Timed repeats; medians are printed.")


def median_ms(
    fn: Callable[[], object], repeats: int, after: Callable[[], object] | None = None
) -> float:
    """Median milliseconds of `fn()`, calling `after()` (untimed) after each call."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
        if after is not None:
            after()
    return 1e3 * statistics.median(seconds)


def synthetic_records(models: Sequence[Model], epochs: int, per_task: int) -> list[dict]:
    """Records of a LASEM run's first `epochs` epochs, with the fields `epoch_record` writes."""
    rng = np.random.default_rng(0)
    num_configs, records = models[0].configs.shape[0], []
    for g in range(1, epochs + 1):
        task, epoch = (g - 1) // per_task, (g - 1) % per_task + 1
        prior, post = rng.dirichlet(np.ones(num_configs), size=2)
        acc = rng.uniform(0.3, 1.0, size=(2, task + 1)).astype(np.float32)
        record = {"task": task, "epoch": epoch, "global_epoch": g, "lr": 0.01 / (1 + g * 1e-3)}
        record.update(loss=float(rng.uniform()), num_devices=1, config="0110")
        record.update(prior=prior.astype(np.float32).tolist(), top_prior=float(prior.max()))
        record.update(phase="em", top_posterior=float(post[int(np.argmax(prior))]))
        record["posterior"] = [round(float(p), 6) for p in post]
        record.update(val=acc[0].tolist(), test=acc[1].tolist())
        records.append(record)
    return records


def run_at(models: Sequence[Model], hp: steps.StepConfig, records: list[dict]) -> run_state.Run:
    """The run state after the last of `records` (parameters from fresh initialisation)."""
    last = records[-1]
    task, key = last["task"], jax.random.PRNGKey(0)
    model, num_layers = models[task], models[0].num_layers
    params = {"shared": model.init_shared(key), "task": model.init_task(key)}
    finished = [models[k].init_task(key) for k in range(task)]
    chosen = [[True] * num_layers] * task
    run = run_state.Run(key, params["shared"], finished, chosen, [True] * num_layers)
    run.task, run.epoch, run.global_epoch = task, last["epoch"], last["global_epoch"]
    run.records, run.kept = records, [[0.9] * (k + 1) for k in range(task)]
    run.prior_history = [[r["prior"] for r in records if r["task"] == k] for k in range(task + 1)]
    run.state = steps.init_state(model, hp, params, key, 0.01)
    return run


def measure(run: run_state.Run, config_json: dict, workdir: str, repeats: int) -> dict:
    """Blocked and background milliseconds, JSON bytes and resume milliseconds of one point."""
    metrics = os.path.join(workdir, "metrics.jsonl")
    results_io.write_jsonl_atomic(metrics, run.records)
    store = checkpoint.CheckpointStore(os.path.join(workdir, "checkpoints"))

    def save_async() -> None:
        arrays, meta = run_state.to_checkpoint(run, config_json, 1.0)
        store.save_async(run.global_epoch, arrays, meta, depends_on=[metrics])

    blocked = median_ms(save_async, repeats, store.wait)
    arrays, meta = run_state.to_checkpoint(run, config_json, 1.0)
    write = median_ms(lambda: store.save(run.global_epoch, arrays, meta), repeats)
    skeleton = os.path.join(store._path(run.global_epoch), tree_io.SKELETON)
    with open(skeleton, encoding="utf-8") as f:
        saved_meta = json.load(f)["meta"]
    resume = median_ms(lambda: checkpoint.saved_records(saved_meta, metrics), repeats)
    size = os.path.getsize(skeleton)
    old_records = [{k: v for k, v in r.items() if k != "prior"} for r in run.records]
    old_meta = {**meta, "records": old_records, "prior_history": run.prior_history}
    old = median_ms(lambda: store.save(run.global_epoch, arrays, old_meta), repeats)
    return {
        "blocked": blocked,
        "write": write,
        "json": size,
        "resume": resume,
        "old": old,
        "old_json": os.path.getsize(skeleton),
    }


def main(argv: Sequence[str]) -> None:
    """Prints the cost of a checkpoint at epoch 1 and at the end of a long run."""
    del argv
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    config, repeats = _CONFIG.value, _REPEATS.value
    tasks = make_tasks(config.data, seed=config.seed)
    models = [run_config.make_model(config, task) for task in tasks]
    hp, config_json = run_config.step_config(config), results_io.to_jsonable(config)
    per_task = -(-_EPOCHS.value // len(tasks))
    records = synthetic_records(models, _EPOCHS.value, per_task)
    points = (1, (len(tasks) - 1) * per_task + 1, _EPOCHS.value)
    cpu = platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    print(
        f"{config.method} / {config.learner}, {config.model.arch} at width {config.model.width}, "
        f"{len(tasks)} tasks, a run of {_EPOCHS.value} epochs ({per_task} per task); "
        f"{os.cpu_count()} CPUs ({cpu}), jax {jax.__version__} on {jax.default_backend()}, "
        f"medians of {repeats}"
    )
    columns = ["global epoch", "task", "blocks training", "background write", "checkpoint JSON"]
    columns += ["resume reads records", "before: blocking write", "before: JSON"]
    print("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for epoch in points:
        run = run_at(models, hp, records[:epoch])
        with tempfile.TemporaryDirectory() as workdir:
            m = measure(run, config_json, workdir, repeats)
        print(
            f"| {epoch:,} | {run.task + 1} | {m['blocked']:.1f} ms | {m['write']:.1f} ms | "
            f"{m['json']:,} B | {m['resume']:.1f} ms | {m['old']:.1f} ms | {m['old_json']:,} B |"
        )
    with tempfile.TemporaryDirectory() as workdir:
        path = os.path.join(workdir, "metrics.jsonl")
        append = median_ms(lambda: results_io.append_jsonl(path, records[-1]), repeats)
    print(f"Appending one record to metrics.jsonl (every epoch): {append:.2f} ms.")


if __name__ == "__main__":
    app.run(main)
