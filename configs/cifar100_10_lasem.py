"""CIFAR-100, 10 tasks: LASEM.

10 disjoint ten-way tasks, 4% of the training data, 4 conv layers.
LASEM with the Laplace prior (Eq. 1) and the product likelihood (Eq. 2).

python -m launch.train --config=configs/cifar100_10_lasem.py --workdir=/tmp/lasem/cifar100_10_lasem

Base learner HPS; add --config.learner=tf or --config.learner=dfcnn for the others.
Smoke test (3 epochs, width 0.25, lr 1e-2): --config=configs/cifar100_10_lasem.py:tiny
"""

from configs import paper


def get_config(arg: str | None = None):
    """Returns the config; `arg="tiny"` shrinks the run for smoke tests."""
    return paper.get_paper_config("cifar100_10", "lasem", arg)
