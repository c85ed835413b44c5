"""Evaluates a finished run's saved model on its tasks' test sets, rebuilt from its config.

python -m launch.evaluate --workdir=/tmp/lasem_digits
(prints each task's test accuracy with the model in <workdir>/model/; they equal the last row
of results.json's accuracy_matrix)
"""

import json

from absl import flags

import lasem_jax
from lasem_jax.data import make_tasks
from lasem_jax.storage import files
from launch import common

_WORKDIR = flags.DEFINE_string("workdir", None, "The workdir of a finished run.")
_ALLOW_IMPORTS = flags.DEFINE_bool(
    "allow_imports",
    False,
    "Let a saved config's import-path model.arch ('package.module:factory') import its module: "
    "only for workdirs you trust, importing runs the module's code.",
)


def evaluate(workdir: str, *, allow_imports: bool = False) -> list[float]:
    """Test accuracy of every task of the run in `workdir` with its saved model."""
    model = lasem_jax.load_trained(workdir, allow_imports=allow_imports)
    tasks = make_tasks(model.config.data, seed=int(model.config.seed), workdir=workdir)
    if len(tasks) != model.num_tasks:
        raise ValueError(
            f"The config builds {len(tasks)} tasks but the model has {model.num_tasks}."
        )
    return [model.evaluate(k, t.x_test, t.y_test) for k, t in enumerate(tasks)]


def main(argv: list[str]) -> None:
    """Prints one line per task and the mean as JSON."""
    if len(argv) > 1:
        common.fail(f"unexpected arguments {argv[1:]}; flags look like --workdir=DIR.")
    if not _WORKDIR.value:
        common.fail("--workdir is required: the workdir of a finished run.")
    accuracies = evaluate(_WORKDIR.value, allow_imports=_ALLOW_IMPORTS.value)
    for k, acc in enumerate(accuracies):
        print(f"task {k}: test accuracy {acc:.4f}")
    summary = {"test_accuracy": accuracies, "mean": sum(accuracies) / len(accuracies)}
    print(json.dumps(summary))
    print(f"Model: {files.path(_WORKDIR.value, files.MODEL)}")


if __name__ == "__main__":
    common.run(main)
