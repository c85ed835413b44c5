"""The lifelong training loop: tasks in order, one jitted scan per epoch, metrics, results."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from lasem_jax import consolidate, em, metrics, results_io, search_space, steps
from lasem_jax.learners import get_learner
from lasem_jax.model import Model, build_model
from lasem_jax.task import Task, validate_tasks

METHODS = ("lasem", "static", "single_task")
jitted_train_epoch = jax.jit(steps.train_epoch, static_argnums=(0, 1))
jitted_accuracy = jax.jit(steps.accuracy, static_argnums=(0,), static_argnames=("chunk",))


def learner_hparams(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """The keyword arguments of `config.learner` taken from `config.model`."""
    m = config.model
    hparams: dict[str, Any] = {"he_init": bool(m.he_init)}
    if config.learner == "tf":
        hparams["ortho_weight"] = float(m.tf_ortho_weight)
    if config.learner == "dfcnn":
        hparams.update(kb_l2=float(m.dfcnn_kb_l2), ts_l2=float(m.dfcnn_ts_l2))
    return hparams


def make_model(config: ml_collections.ConfigDict, task: Task) -> Model:
    """The model for one task (the number of classes may differ between tasks)."""
    m = config.model
    partition = m.partition if config.method == "lasem" else None
    return build_model(
        m.arch,
        get_learner(config.learner, **learner_hparams(config)),
        task.num_classes,
        partition=partition,
        width=m.width,
        input_shape=task.image_shape,
        fc_hidden=m.fc_hidden,
    )


def validate_config(config: ml_collections.ConfigDict, num_layers: int) -> None:
    """Raises ValueError naming the field and the fix for any invalid setting."""
    if config.method not in METHODS:
        raise ValueError(f"config.method={config.method!r} is unknown; use one of {METHODS}.")
    if config.em.likelihood not in em.LIKELIHOOD_MODES:
        raise ValueError(
            f"config.em.likelihood={config.em.likelihood!r}; use one of {em.LIKELIHOOD_MODES}."
        )
    if config.em.prior not in em.PRIORS:
        raise ValueError(f"config.em.prior={config.em.prior!r}; use one of {em.PRIORS}.")
    if config.method == "static":
        search_space.named_config(config.static_config, num_layers)
    search_space.validate_partition(num_layers, config.model.partition)
    if config.train.batch_size < 1 or config.train.epochs_per_task < 1:
        raise ValueError("config.train.batch_size and epochs_per_task must be >= 1.")


def step_config(config: ml_collections.ConfigDict) -> steps.StepConfig:
    """The hashable step hyperparameters of a run."""
    e = config.em
    return steps.StepConfig(
        method="lasem" if config.method == "lasem" else "static",
        likelihood=e.likelihood,
        prior=e.prior,
        prior_init_count=float(e.prior_init_count),
        fixed_config=e.fixed_config,
        fixed_prob=float(e.fixed_prob),
        num_m_steps=int(e.num_m_steps),
        batch_size=int(config.train.batch_size),
    )


def _static_config(config: ml_collections.ConfigDict, num_layers: int) -> np.ndarray:
    name = "none" if config.method == "single_task" else config.static_config
    return search_space.named_config(name, num_layers)


def train_lifelong(
    tasks: Sequence[Task],
    config: ml_collections.ConfigDict,
    *,
    workdir: str | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> dict[str, Any]:
    """Trains `config.method` on `tasks` in order and returns the results.

    Per task: fresh task parameters, prior and optimiser state; shared layers no earlier task
    transfers are re-initialised. Per epoch: one jitted scan over the shuffled minibatches,
    then validation and test accuracy of every task seen so far (the current task with the
    configuration of highest prior). End of task: consolidation (`consolidate.consolidate`).

    Args:
      tasks: the task sequence (`Task` objects, validated here).
      config: the run's `ConfigDict` (see `configs/default.py`).
      workdir: if given, per-epoch records are appended to `workdir/metrics.jsonl` and the
        results are written atomically to `workdir/results.json`.
      on_epoch: optional callback receiving each epoch's record (for progress display).

    Returns:
      The results dict (fields documented in the README).
    """
    validate_tasks(tasks)
    models = [make_model(config, task) for task in tasks]
    num_layers = models[0].num_layers
    validate_config(config, num_layers)
    hp = step_config(config)
    static_cfg = _static_config(config, num_layers) if hp.method == "static" else None
    rng = jax.random.PRNGKey(config.seed)
    rng, init_key = jax.random.split(rng)
    shared = models[0].init_shared(init_key)
    alive = np.zeros(num_layers, bool)
    stored, chosen, records, prior_history = [], [], [], []
    finished: list[tuple] = []  # (model, frozen task params, config, device splits) per task
    accuracy = functools.partial(jitted_accuracy, chunk=int(config.train.eval_chunk))
    global_epoch, start = 0, time.time()
    metrics_path = os.path.join(workdir, "metrics.jsonl") if workdir else None
    if metrics_path:
        os.makedirs(workdir, exist_ok=True)
        open(metrics_path, "w").close()  # A new run starts a new metrics file.
    run_cfg = jnp.asarray(static_cfg if static_cfg is not None else np.ones(num_layers, bool))
    for t, (task, model) in enumerate(zip(tasks, models, strict=True)):
        rng, dead_key, task_key, run_key = jax.random.split(rng, 4)
        shared = consolidate.refresh_dead_layers(model, shared, alive, dead_key)
        params = {"shared": shared, "task": model.init_task(task_key)}
        state = steps.init_state(model, hp, params, run_key, config.optim.lr)
        x, y = jnp.asarray(task.x_train), jnp.asarray(task.y_train)
        splits = _device_splits(task)
        task_priors = []
        for epoch in range(1, config.train.epochs_per_task + 1):
            lr = config.optim.lr / (1.0 + global_epoch * config.optim.lr_decay)
            state, out = jitted_train_epoch(model, hp, state, x, y, lr, run_cfg)
            global_epoch += 1
            current = _current_config(model, hp, state, static_cfg)
            record = {"task": t, "epoch": epoch, "global_epoch": global_epoch, "lr": lr}
            record["loss"] = float(out["loss"])
            record["config"] = search_space.config_to_string(current)
            if hp.method == "lasem":
                prior = np.exp(np.asarray(steps.make_prior(model, hp).log_prob(state.prior)))
                task_priors.append(prior.tolist())
                record["top_prior"] = float(prior.max())
                record["top_posterior"] = float(out["posterior"][int(np.argmax(prior))])
            seen = [*finished, (model, state.params["task"], jnp.asarray(current), splits)]
            for split in ("val", "test"):
                record[split] = [
                    float(
                        accuracy(m, {"shared": state.params["shared"], "task": p}, c, *data[split])
                    )
                    for m, p, c, data in seen
                ]
            records.append(record)
            if metrics_path:
                results_io.append_jsonl(metrics_path, record)
            if on_epoch:
                on_epoch(record)
        shared, frozen, alive = consolidate.consolidate(
            params["shared"], state.params["shared"], state.params["task"], current, alive
        )
        finished.append((model, frozen, jnp.asarray(current), splits))
        stored.append(frozen)
        chosen.append(current)
        prior_history.append(task_priors)
    results = _results(config, tasks, records, chosen, prior_history, shared, stored)
    results["train_seconds"] = time.time() - start
    if workdir:
        results_io.write_json_atomic(os.path.join(workdir, "results.json"), results)
    return results


def _device_splits(task: Task) -> dict[str, tuple[jax.Array, jax.Array]]:
    """The task's validation and test sets on the device, uploaded once per task."""
    return {
        "val": (jnp.asarray(task.x_val), jnp.asarray(task.y_val)),
        "test": (jnp.asarray(task.x_test), jnp.asarray(task.y_test)),
    }


def _current_config(
    model: Model, hp: steps.StepConfig, state: steps.TrainState, static_cfg: np.ndarray | None
) -> np.ndarray:
    """The configuration the current task is evaluated with: argmax prior (lowest on ties)."""
    if static_cfg is not None:
        return static_cfg
    log_prior = steps.make_prior(model, hp).log_prob(state.prior)
    return model.configs[int(np.argmax(np.asarray(log_prior)))]


def _results(
    config: ml_collections.ConfigDict,
    tasks: Sequence[Task],
    records: list[dict],
    chosen: list[np.ndarray],
    prior_history: list[list],
    shared: dict,
    stored: list[dict],
) -> dict[str, Any]:
    configs = [np.asarray(c, bool) for c in chosen]
    summary = metrics.summarize(records, len(tasks))
    return {
        "method": config.method,
        "learner": config.learner,
        "dataset": config.data.name,
        "num_tasks": len(tasks),
        "seed": int(config.seed),
        **summary,
        "chosen_configs": [c.astype(int).tolist() for c in configs],
        "transfer_fraction_per_layer": np.mean(configs, axis=0).tolist(),
        "prior_history": prior_history,
        "num_parameters": consolidate.live_parameter_count(shared, stored, configs),
        "config": results_io.to_jsonable(config),
    }
