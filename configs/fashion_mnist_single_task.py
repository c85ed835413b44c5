"""Fashion-MNIST, 10 three-way tasks: single-task baseline of configs/fashion_mnist_lasem_hps.py.

python -m launch.train --config=configs/fashion_mnist_single_task.py --workdir=/tmp/fm_single_task
"""

from configs.fashion_mnist_lasem_hps import fashion_mnist_config


def get_config(arg: str | None = None):
    """Returns the single_task config (static: --config.static_config=all by default)."""
    return fashion_mnist_config("single_task", arg)
