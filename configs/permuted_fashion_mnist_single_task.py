"""Permuted Fashion-MNIST: single_task baseline of configs/permuted_fashion_mnist_lasem.py.

python -m launch.train --config=configs/permuted_fashion_mnist_single_task.py \
    --workdir=/tmp/pfm_single_task
"""

from configs.permuted_fashion_mnist_lasem import DATASET, transformed_config


def get_config(arg: str | None = None):
    """Returns the single_task config (--config.static_config=all by default)."""
    return transformed_config(DATASET, "single_task", arg)
