"""Rotated Fashion-MNIST: single_task baseline of configs/rotated_fashion_mnist_lasem.py.

python -m launch.train --config=configs/rotated_fashion_mnist_single_task.py \
    --workdir=/tmp/rfm_single_task
"""

from configs.permuted_fashion_mnist_lasem import transformed_config
from configs.rotated_fashion_mnist_lasem import DATASET


def get_config(arg: str | None = None):
    """Returns the single_task config (--config.static_config=all by default)."""
    return transformed_config(DATASET, "single_task", arg)
