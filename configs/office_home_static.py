r"""Office-Home, 10 tasks: static transfer.

10 thirteen-way tasks (Product and RealWorld domains), 4 conv layers.
A static transfer configuration, by default all layers transfer.

python -m launch.train --config=configs/office_home_static.py \
    --workdir=/tmp/lasem/office_home_static

Base learner HPS; add --config.learner=tf or --config.learner=dfcnn for the others.
Smoke test (3 epochs, width 0.25, lr 1e-2): --config=configs/office_home_static.py:tiny

Other configurations: --config.static_config=top2 (also top<k>, bottom<k>, alternating,
alternating_even, none, or a bit string such as 0101, input-side layer first).
Office-Home has no download: add --config.data.manual_dir=/path/to/OfficeHomeDataset.
"""

from configs import paper


def get_config(arg: str | None = None):
    """Returns the config; `arg="tiny"` shrinks the run for smoke tests."""
    return paper.get_paper_config("office_home", "static", arg)
