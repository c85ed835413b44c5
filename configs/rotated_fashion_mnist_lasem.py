"""Rotated Fashion-MNIST, 10 ten-way tasks (a fixed angle each): LASEM with HPS, CPU-sized.

python -m launch.train --config=configs/rotated_fashion_mnist_lasem.py --workdir=/tmp/rfm_lasem

Real data offline as configs/permuted_fashion_mnist_lasem.py; `:tiny` and `:small` as there.
"""

from configs.permuted_fashion_mnist_lasem import transformed_config

DATASET = "rotated_fashion_mnist"


def get_config(arg: str | None = None):
    """Returns the LASEM (HPS) config."""
    return transformed_config(DATASET, "lasem", arg)
