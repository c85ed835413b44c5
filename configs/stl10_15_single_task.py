r"""STL-10, 15 tasks: single-task learning.

15 five-way tasks (Appendix D), 10% of the data, 9 conv layers.
Single-task learning: no layer transfers.

python -m launch.train --config=configs/stl10_15_single_task.py \
    --workdir=/tmp/lasem/stl10_15_single_task

Base learner HPS; add --config.learner=tf or --config.learner=dfcnn for the others.
Smoke test (3 epochs, width 0.25, lr 1e-2): --config=configs/stl10_15_single_task.py:tiny
"""

from configs import paper


def get_config(arg: str | None = None):
    """Returns the config; `arg="tiny"` shrinks the run for smoke tests."""
    return paper.get_paper_config("stl10_15", "single_task", arg)
