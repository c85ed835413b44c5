"""Office-Home, 10 tasks: APD-Net (Table 1, docs/protocol.md §10).

10 thirteen-way tasks (Product and RealWorld domains), 4 conv layers.
Kernel = shared * sigmoid(mask) + additive; --config.apd.lambda1 / lambda2.

python -m launch.train --config=configs/office_home_apd.py --workdir=/tmp/lasem/oh_apd

Uses config.model (architecture, width) but no base learner.
Smoke test (3 epochs, width 0.25, lr 1e-2): --config=configs/office_home_apd.py:tiny
Office-Home has no download: add --config.data.manual_dir=/path/to/OfficeHomeDataset.
"""

from configs import paper


def get_config(arg: str | None = None):
    """Returns the config; `arg="tiny"` shrinks the run for smoke tests."""
    return paper.get_paper_config("office_home", "apd", arg)
