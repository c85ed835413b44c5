"""Fashion-MNIST, 10 three-way tasks: `si` (docs/methods.md), task heads on one shared trunk.

The offline scenario of configs/fashion_mnist_lasem_hps.py (same data, epochs, width); `:tiny`
is a 3-epoch smoke test and `:small` the README's comparison scenario.

python -m launch.train --config=configs/fashion_mnist_si.py --workdir=/tmp/fm_si
"""

from configs.fashion_mnist_lasem_hps import fashion_mnist_config


def get_config(arg: str | None = None):
    """Returns the config; `arg` = None, "tiny" or "small"."""
    return fashion_mnist_config("si", arg)
