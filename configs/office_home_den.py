"""Office-Home, 10 tasks: DEN (Table 1, docs/protocol.md §10; re-implemented from the paper).

10 thirteen-way tasks (Product and RealWorld domains), 4 conv layers.
Selective retraining, expansion by --config.den.expansion_size units, split/duplicate.

python -m launch.train --config=configs/office_home_den.py --workdir=/tmp/lasem/oh_den

Uses config.model (architecture, width) but no base learner.
Smoke test (3 epochs, width 0.25, lr 1e-2): --config=configs/office_home_den.py:tiny
Office-Home has no download: add --config.data.manual_dir=/path/to/OfficeHomeDataset.
"""

from configs import paper


def get_config(arg: str | None = None):
    """Returns the config; `arg="tiny"` shrinks the run for smoke tests."""
    return paper.get_paper_config("office_home", "den", arg)
