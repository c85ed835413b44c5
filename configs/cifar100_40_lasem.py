"""CIFAR-100, 40 tasks: LASEM.

40 ten-way tasks from overlapping class lists, 4% of the data, 4 conv layers.
LASEM with the Laplace prior (Eq. 1) and the product likelihood (Eq. 2).

python -m launch.train --config=configs/cifar100_40_lasem.py --workdir=/tmp/lasem/cifar100_40_lasem

Base learner HPS; add --config.learner=tf or --config.learner=dfcnn for the others.
Smoke test (3 epochs, width 0.25, lr 1e-2): --config=configs/cifar100_40_lasem.py:tiny
"""

from configs import paper


def get_config(arg: str | None = None):
    """Returns the config; `arg="tiny"` shrinks the run for smoke tests."""
    return paper.get_paper_config("cifar100_40", "lasem", arg)
