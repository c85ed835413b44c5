"""A finished run's trained model as a file artifact, `<workdir>/model/`, and loading it back."""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from lasem_jax import results_io, run_config, steps, tree_io

MODEL_DIR = "model"
FORMAT = 1


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """What a trained model needs to know of a task without its data.

    Attributes:
      name: the task's name.
      image_shape: `(H, W, C)` of its images.
      num_classes: outputs `K` of its head.
    """

    name: str
    image_shape: tuple[int, int, int]
    num_classes: int


def save_trained(
    workdir: str,
    config: ml_collections.ConfigDict,
    tasks: Sequence[Any],
    state: Any,
    chosen: Sequence[np.ndarray] | None,
) -> str:
    """Writes `<workdir>/model/` atomically (whole or not at all); returns its path.

    Args:
      workdir: the run's workdir.
      config: the run's config.
      tasks: the run's tasks (`Task` or `TaskSpec`: name, image shape and class count are kept).
      state: the method's parameters: `{"shared", "tasks"}` for the LASEM family, a baseline's
        `predict_state()` otherwise.
      chosen: each task's `[L]` bool configuration, or None if the method chooses none.
    """
    meta = {
        "format": FORMAT,
        "method": config.method,
        "config": results_io.to_jsonable(config),
        "tasks": [
            {"name": t.name, "image_shape": list(t.image_shape), "num_classes": t.num_classes}
            for t in tasks
        ],
        "chosen_configs": None if chosen is None else np.asarray(chosen, int).tolist(),
    }
    path = os.path.join(workdir, MODEL_DIR)
    tree_io.save(path, state, meta)
    return path


def config_from_json(data: dict[str, Any]) -> ml_collections.ConfigDict:
    """A run's config from its JSON form (`results.json["config"]`), lists back to tuples."""

    def tuples(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: tuples(v) for k, v in value.items()}
        if isinstance(value, list):
            return tuple(tuples(v) for v in value)
        return value

    return ml_collections.ConfigDict(tuples(data))


class TrainedModel:
    """A finished run's model: predictions and accuracy for every task it learned.

    Attributes:
      method: the run's `config.method`.
      config: the run's config.
      tasks: one `TaskSpec` per task.
      chosen_configs: `[T][L]` 0/1 configurations (1 = transfer), or None.
    """

    def __init__(self, state: Any, meta: dict[str, Any]) -> None:
        self.method = meta["method"]
        self.config = config_from_json(meta["config"])
        self.tasks = [
            TaskSpec(t["name"], tuple(t["image_shape"]), int(t["num_classes"]))
            for t in meta["tasks"]
        ]
        self.chosen_configs = meta["chosen_configs"]
        self._chunk = int(self.config.train.eval_chunk)
        from lasem_jax.baselines import BASELINES  # Here: baselines.loop imports this module.

        if self.method in BASELINES:
            self._baseline = BASELINES[self.method](self.config, list(self.tasks))
            self._baseline.load_predict_state(state)
        else:
            self._baseline = None
            self._state = jax.tree_util.tree_map(jnp.asarray, state)

    @property
    def num_tasks(self) -> int:
        """Number of tasks the model serves."""
        return len(self.tasks)

    @functools.cached_property
    def _models(self) -> list:
        return [run_config.make_model(self.config, spec) for spec in self.tasks]

    def _params(self, k: int) -> tuple[dict, jax.Array]:
        params = {"shared": self._state["shared"], "task": self._state["tasks"][k]}
        return params, jnp.asarray(self.chosen_configs[k], bool)

    def _check(self, task_index: int, x: Any) -> jax.Array:
        if not 0 <= task_index < self.num_tasks:
            raise ValueError(
                f"task_index={task_index} is out of range; this model has tasks "
                f"0..{self.num_tasks - 1}."
            )
        x = jnp.asarray(x, jnp.float32)
        shape = self.tasks[task_index].image_shape
        if x.ndim != 4 or tuple(x.shape[1:]) != shape:
            raise ValueError(
                f"x has shape {tuple(x.shape)}; task {task_index} takes [N, H, W, C] images "
                f"with (H, W, C) = {shape}."
            )
        return x

    def predict(self, task_index: int, x: Any) -> jax.Array:
        """Logits `[N, K_t]` of task `task_index` on images `x` `[N, H, W, C]` (no dropout)."""
        x = self._check(task_index, x)
        if self._baseline is not None:
            return self._baseline.logits(task_index, x)
        params, config = self._params(task_index)
        return self._models[task_index].apply_config(params, x, config)

    def evaluate(self, task_index: int, x: Any, y: Any) -> float:
        """Accuracy of task `task_index` on images `x` `[N, H, W, C]` and labels `y` `[N]`."""
        x = self._check(task_index, x)
        y = jnp.asarray(y, jnp.int32)
        if y.shape != (x.shape[0],):
            raise ValueError(f"y has shape {tuple(y.shape)}; expected ({x.shape[0]},).")
        if self._baseline is not None:
            return float(self._baseline.accuracy(task_index, x, y))
        params, config = self._params(task_index)
        model = self._models[task_index]
        return float(steps.jitted_accuracy(model, params, config, x, y, chunk=self._chunk))


def load_trained(workdir: str) -> TrainedModel:
    """Loads the model a finished run wrote to `<workdir>/model/`.

    Raises:
      FileNotFoundError: the workdir holds no complete model (the run has not finished).
    """
    path = os.path.join(workdir, MODEL_DIR)
    try:
        state, meta = tree_io.load(path)
    except FileNotFoundError as e:
        raise FileNotFoundError(
            f"{workdir} holds no trained model ({path} is missing or incomplete); a run writes "
            "it when it finishes: run it to the end (re-running resumes it)."
        ) from e
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} has format {meta.get('format')}; this lasem_jax reads {FORMAT}.")
    return TrainedModel(state, meta)
