"""CIFAR-100, 10 tasks: brute-force configuration search (Table 3, docs/protocol.md §8).

10 disjoint ten-way tasks, 4% of the data, 4 conv layers.
Every configuration is trained from the same start for each task; the best validation accuracy wins.
The first task is searched too; --config.brute_force.search_first_task=False trains it
as the reference: HPS with every layer task-specific, TF and DF-CNN with every layer shared.

python -m launch.train --config=configs/cifar100_10_brute_force.py --workdir=/tmp/lasem/c10_bf

Base learner HPS; add --config.learner=dfcnn (or tf) for the others.
Smoke test (3 epochs, width 0.25, lr 1e-2): --config=configs/cifar100_10_brute_force.py:tiny
CIFAR-100 must be prepared with tfds first (README, Datasets).
"""

from configs import paper


def get_config(arg: str | None = None):
    """Returns the config; `arg="tiny"` shrinks the run for smoke tests."""
    return paper.get_paper_config("cifar100_10", "brute_force", arg)
