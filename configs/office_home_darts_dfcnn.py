"""Office-Home, 10 tasks: DARTS layer selection (Table 1, docs/protocol.md §10).

10 thirteen-way tasks (Product and RealWorld domains), 4 conv layers.
Per layer a softmax over {task-specific, transfer}; --config.darts.order=2 for second order.

python -m launch.train --config=configs/office_home_darts_dfcnn.py --workdir=/tmp/oh_darts_dfcnn

Base learner DF-CNN (Table 1's DARTS DF-CNN).
Smoke test (3 epochs, width 0.25, lr 1e-2): --config=configs/office_home_darts_dfcnn.py:tiny
Office-Home has no download: add --config.data.manual_dir=/path/to/OfficeHomeDataset.
"""

from configs import paper


def get_config(arg: str | None = None):
    """Returns the config; `arg="tiny"` shrinks the run for smoke tests."""
    return paper.get_paper_config("office_home", "darts", arg, learner="dfcnn")
