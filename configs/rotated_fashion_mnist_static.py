"""Rotated Fashion-MNIST: static baseline of configs/rotated_fashion_mnist_lasem.py.

python -m launch.train --config=configs/rotated_fashion_mnist_static.py --workdir=/tmp/rfm_static
"""

from configs.permuted_fashion_mnist_lasem import transformed_config
from configs.rotated_fashion_mnist_lasem import DATASET


def get_config(arg: str | None = None):
    """Returns the static config (--config.static_config=all by default)."""
    return transformed_config(DATASET, "static", arg)
