"""Permuted Fashion-MNIST: static baseline of configs/permuted_fashion_mnist_lasem.py.

python -m launch.train --config=configs/permuted_fashion_mnist_static.py --workdir=/tmp/pfm_static
"""

from configs.permuted_fashion_mnist_lasem import DATASET, transformed_config


def get_config(arg: str | None = None):
    """Returns the static config (--config.static_config=all by default)."""
    return transformed_config(DATASET, "static", arg)
