"""Office-Home, 10 tasks: LASEM.

10 thirteen-way tasks (Product and RealWorld domains), 4 conv layers.
LASEM with the Laplace prior (Eq. 1) and the product likelihood (Eq. 2).

python -m launch.train --config=configs/office_home_lasem.py --workdir=/tmp/lasem/office_home_lasem

Base learner HPS; add --config.learner=tf or --config.learner=dfcnn for the others.
Smoke test (3 epochs, width 0.25, lr 1e-2): --config=configs/office_home_lasem.py:tiny

Office-Home has no download: add --config.data.manual_dir=/path/to/OfficeHomeDataset.
"""

from configs import paper


def get_config(arg: str | None = None):
    """Returns the config; `arg="tiny"` shrinks the run for smoke tests."""
    return paper.get_paper_config("office_home", "lasem", arg)
