"""Fashion-MNIST, 10 three-way tasks: brute-force search (HPS).

The offline scenario of configs/fashion_mnist_lasem_hps.py (same data, epochs, width);
--config.learner=dfcnn (or tf) picks another base learner where the method uses one.

python -m launch.train --config=configs/fashion_mnist_brute_force.py --workdir=/tmp/fm_brute_force
"""

from configs.fashion_mnist_lasem_hps import fashion_mnist_config


def get_config(arg: str | None = None):
    """Returns the config; `arg="tiny"` is a 3-epoch smoke test."""
    return fashion_mnist_config("brute_force", arg)
