r"""CIFAR-100, 10 tasks: single-task learning.

10 disjoint ten-way tasks, 4% of the training data, 4 conv layers.
Single-task learning: no layer transfers.

python -m launch.train --config=configs/cifar100_10_single_task.py \
    --workdir=/tmp/lasem/cifar100_10_single_task

Base learner HPS; add --config.learner=tf or --config.learner=dfcnn for the others.
Smoke test (3 epochs, width 0.25, lr 1e-2): --config=configs/cifar100_10_single_task.py:tiny
"""

from configs import paper


def get_config(arg: str | None = None):
    """Returns the config; `arg="tiny"` shrinks the run for smoke tests."""
    return paper.get_paper_config("cifar100_10", "single_task", arg)
