"""Fashion-MNIST, 10 three-way tasks: static baseline of configs/fashion_mnist_lasem_hps.py.

python -m launch.train --config=configs/fashion_mnist_static.py --workdir=/tmp/fm_static
"""

from configs.fashion_mnist_lasem_hps import fashion_mnist_config


def get_config(arg: str | None = None):
    """Returns the static config (static: --config.static_config=all by default)."""
    return fashion_mnist_config("static", arg)
