"""Permuted Fashion-MNIST, 10 ten-way tasks (a pixel permutation each): LASEM with HPS, CPU-sized.

python -m launch.train --config=configs/permuted_fashion_mnist_lasem.py --workdir=/tmp/pfm_lasem

Real data offline: `apt-get install dataset-fashion-mnist` or --config.data.data_dir=<idx dir>.
Every permuted_fashion_mnist_<method> file reuses `transformed_config` (also the rotated
scenario's); `:tiny` is a 3-epoch smoke test (`lasem_jax.config.defaults.apply_tiny`) and `:small`
5 tasks of 100 training images per class at width 0.25, as configs/fashion_mnist_lasem_hps.py.
"""

from configs.fashion_mnist_lasem_hps import fashion_mnist_config

DATASET = "permuted_fashion_mnist"


def transformed_config(dataset: str, method: str, arg: str | None = None):
    """Returns the config of `method` on `dataset` (permuted or rotated Fashion-MNIST)."""
    c = fashion_mnist_config(method, arg)
    c.data.name = dataset
    c.data.classes_per_task = 10  # every task has all 10 classes (documentation only)
    return c


def get_config(arg: str | None = None):
    """Returns the LASEM (HPS) config."""
    return transformed_config(DATASET, "lasem", arg)
