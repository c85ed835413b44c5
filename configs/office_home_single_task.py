r"""Office-Home, 10 tasks: single-task learning.

10 thirteen-way tasks (Product and RealWorld domains), 4 conv layers.
Single-task learning: no layer transfers.

python -m launch.train --config=configs/office_home_single_task.py \
    --workdir=/tmp/lasem/office_home_single_task

Base learner HPS; add --config.learner=tf or --config.learner=dfcnn for the others.
Smoke test (3 epochs, width 0.25, lr 1e-2): --config=configs/office_home_single_task.py:tiny

Office-Home has no download: add --config.data.manual_dir=/path/to/OfficeHomeDataset.
"""

from configs import paper


def get_config(arg: str | None = None):
    """Returns the config; `arg="tiny"` shrinks the run for smoke tests."""
    return paper.get_paper_config("office_home", "single_task", arg)
