"""A finished run's trained model as a file artifact, `<workdir>/model/`, and loading it back."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lasem_jax.baselines import BASELINES
from lasem_jax.config import run_config
from lasem_jax.core.frozen import RunConfig, freeze
from lasem_jax.engine import steps
from lasem_jax.errors import LoadError, MissingFileError
from lasem_jax.networks import architectures
from lasem_jax.storage import files, results_io, tree_io

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
    config: RunConfig,
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
    path = files.path(workdir, files.MODEL)
    tree_io.save(path, state, meta)
    return path


def config_from_json(data: dict[str, Any]) -> RunConfig:
    """A run's config from its JSON form (`results.json["config"]`), frozen: lists as tuples."""
    return freeze(data)


class TrainedModel:
    """A finished run's model: predictions and accuracy for every task it learned.

    Built by `load_trained`, which checks the saved state against what its config implies.

    Attributes:
      method: the run's `config.method`.
      config: the run's config.
      tasks: one `TaskSpec` per task.
      chosen_configs: `[T][L]` 0/1 configurations (1 = transfer), or None.
    """

    def __init__(self, state: Any, meta: dict[str, Any], *, where: str = "the model") -> None:
        self.method = meta["method"]
        self.config = config_from_json(meta["config"])
        self.tasks = [
            TaskSpec(t["name"], tuple(t["image_shape"]), int(t["num_classes"]))
            for t in meta["tasks"]
        ]
        self.chosen_configs = meta["chosen_configs"]
        self._chunk = int(self.config.train.eval_chunk)
        if self.method not in (*run_config.LASEM_FAMILY, *BASELINES):
            raise LoadError(f"{where}: method {self.method!r} is not a method of this lasem_jax.")
        if self.method in BASELINES:
            self._baseline = BASELINES[self.method](self.config, list(self.tasks))
            self._baseline.load_predict_state(state)
            self._models = []
        else:
            self._baseline = None
            self._models = [run_config.make_model(self.config, spec) for spec in self.tasks]
            num_layers = self._models[0].num_layers
            if self.chosen_configs is None or any(
                len(c) != num_layers for c in self.chosen_configs
            ):
                raise LoadError(f"{where}: 'chosen_configs' must hold {num_layers} bits per task.")
            tree_io.check_like(state, self._template(), f"{where} arrays")
            self._state = jax.tree_util.tree_map(jnp.asarray, state)
        self._check_outputs(where)

    def _template(self) -> dict[str, Any]:
        """Fresh `{"shared", "tasks"}` parameters: the shapes and dtypes the config implies.

        Drawn for real (a NumPy initialiser cannot be traced); a one-time cost at load.
        """
        key = jax.random.PRNGKey(0)
        return {
            "shared": self._models[0].init_shared(key),
            "tasks": [m.init_task(key) for m in self._models],
        }

    def _check_outputs(self, where: str) -> None:
        """Traces every task's logits on one image: the state serves the tasks it claims."""
        for k, spec in enumerate(self.tasks):
            x = jax.ShapeDtypeStruct((1, *spec.image_shape), jnp.float32)
            out = jax.eval_shape(functools.partial(self._logits, k), x)
            if tuple(out.shape) != (1, spec.num_classes):
                raise LoadError(
                    f"{where}: task {k} gives logits of shape {tuple(out.shape)}; its metadata "
                    f"says {spec.num_classes} classes."
                )

    @property
    def num_tasks(self) -> int:
        """Number of tasks the model serves."""
        return len(self.tasks)

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
        return self._logits(task_index, self._check(task_index, x))

    def _logits(self, k: int, x: jax.Array) -> jax.Array:
        if self._baseline is not None:
            return self._baseline.logits(k, x)
        params, config = self._params(k)
        return self._models[k].apply_config(params, x, config)

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


def _check_meta(meta: dict[str, Any], where: str) -> None:
    """Raises `LoadError` unless `meta` has the fields and types `save_trained` writes."""

    def need(ok: bool, problem: str) -> None:
        if not ok:
            raise LoadError(f"{where}: {problem}")

    need(
        meta.get("format") == FORMAT,
        f"format {meta.get('format')!r}; this lasem_jax reads {FORMAT}.",
    )
    need(isinstance(meta.get("method"), str), "'method' must be a string.")
    need(isinstance(meta.get("config"), dict), "'config' must be a JSON object.")
    tasks = meta.get("tasks")
    need(isinstance(tasks, list) and len(tasks) > 0, "'tasks' must be a non-empty list.")
    for k, t in enumerate(tasks):
        need(isinstance(t, dict) and isinstance(t.get("name"), str), f"task {k} has no name.")
        shape, classes = t.get("image_shape"), t.get("num_classes")
        need(
            isinstance(shape, list) and len(shape) == 3 and all(_small_int(s) for s in shape),
            f"task {k}: image_shape {shape!r} is not [H, W, C] of positive integers.",
        )
        need(_small_int(classes), f"task {k}: num_classes {classes!r} is not a positive integer.")
    chosen = meta.get("chosen_configs")
    if chosen is not None:
        need(
            isinstance(chosen, list)
            and len(chosen) == len(tasks)
            and all(isinstance(c, list) and c and all(b in (0, 1) for b in c) for c in chosen),
            "'chosen_configs' must be one list of 0/1 per task.",
        )


def _small_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 1 << 16


def load_trained(workdir: str, *, allow_imports: bool = False) -> TrainedModel:
    """Loads the model a finished run wrote to `<workdir>/model/`, checked against its config.

    Loading treats the files as data: it imports nothing they name (an import-path
    `model.arch` needs `allow_imports=True`, or this process having resolved it already), and
    every array must have the structure, shape and dtype that the saved config implies.

    Args:
      workdir: the run's workdir.
      allow_imports: let the saved config's import-path `model.arch` import its module (only
        for files you trust: importing runs the module's code).

    Raises:
      MissingFileError: the workdir holds no complete model (the run has not finished); a
        `LoadError` and a `FileNotFoundError`.
      LoadError: the model's files are malformed, disagree with its config, or need an import
        that `allow_imports` did not allow.
    """
    path = files.path(workdir, files.MODEL)
    try:
        state, meta = tree_io.load(path)
    except MissingFileError as e:
        raise MissingFileError(
            f"{workdir} holds no trained model ({path} is missing or incomplete); a run writes "
            "it when it finishes: run it to the end (re-running resumes it)."
        ) from e
    _check_meta(meta, path)
    model_fields = meta["config"].get("model")
    arch = model_fields.get("arch") if isinstance(model_fields, dict) else None
    architectures.require_import_consent(
        arch,
        allow_imports=allow_imports,
        option="allow_imports=True (launch.evaluate: --allow_imports)",
    )
    try:
        return TrainedModel(state, meta, where=path)
    except LoadError:
        raise
    except (TypeError, KeyError, ValueError, AttributeError, IndexError) as e:
        raise LoadError(
            f"{path}: its state and saved config do not make a model: {type(e).__name__}: {e}"
        ) from None
