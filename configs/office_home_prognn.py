"""Office-Home, 10 tasks: Progressive Neural Networks (Table 1, docs/protocol.md §10).

10 thirteen-way tasks (Product and RealWorld domains), 4 conv layers.
A new column per task, earlier columns frozen, laterals with --config.prognn.dim_reduction_scale.

python -m launch.train --config=configs/office_home_prognn.py --workdir=/tmp/lasem/oh_prognn

Uses config.model (architecture, width) but no base learner.
Smoke test (3 epochs, width 0.25, lr 1e-2): --config=configs/office_home_prognn.py:tiny
Office-Home has no download: add --config.data.manual_dir=/path/to/OfficeHomeDataset.
"""

from configs import paper


def get_config(arg: str | None = None):
    """Returns the config; `arg="tiny"` shrinks the run for smoke tests."""
    return paper.get_paper_config("office_home", "prognn", arg)
