"""Prints the tasks of a config's dataset: names, classes, split sizes and pixel statistics.

python -m launch.data_info --config=configs/fashion_mnist_lasem_hps.py
"""

import numpy as np
from absl import app
from ml_collections import config_flags

from lasem_jax.data import make_tasks

_CONFIG = config_flags.DEFINE_config_file(
    "config", "configs/default.py", "Experiment config file.", lock_config=True
)


def _channel_stats(images: np.ndarray) -> str:
    """Formats min/max/mean/std per channel of ``[N, H, W, C]`` images."""
    flat = images.reshape(-1, images.shape[-1]).astype(np.float64)
    stats = zip(flat.min(0), flat.max(0), flat.mean(0), flat.std(0), strict=True)
    return " ".join(
        f"c{c}[min {lo:.3f} max {hi:.3f} mean {mu:.3f} std {sd:.3f}]"
        for c, (lo, hi, mu, sd) in enumerate(stats)
    )


def main(argv: list[str]) -> None:
    """Builds the tasks of `--config` and prints one block per task."""
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    config = _CONFIG.value
    try:
        tasks = make_tasks(config.data, seed=config.seed)
    except ValueError as e:
        raise SystemExit(f"Error: {e}") from e
    print(f"dataset {config.data.name}: {len(tasks)} tasks, image shape {tasks[0].image_shape}")
    for index, task in enumerate(tasks):
        sizes = f"train {task.num_train} val {len(task.y_val)} test {len(task.y_test)}"
        print(f"task {index}: {task.name} | num_classes {task.num_classes} | {sizes}")
        print(f"  train pixels: {_channel_stats(task.x_train)}")


if __name__ == "__main__":
    app.run(main)
