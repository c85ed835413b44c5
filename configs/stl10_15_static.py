"""STL-10, 15 tasks: static transfer.

15 five-way tasks (Appendix D), 10% of the data, 9 conv layers.
A static transfer configuration, by default all layers transfer.

python -m launch.train --config=configs/stl10_15_static.py --workdir=/tmp/lasem/stl10_15_static

Base learner HPS; add --config.learner=tf or --config.learner=dfcnn for the others.
Smoke test (3 epochs, width 0.25, lr 1e-2): --config=configs/stl10_15_static.py:tiny

Other configurations: --config.static_config=top2 (also top<k>, bottom<k>, alternating,
alternating_even, none, or a bit string such as 0101, input-side layer first).
The paper's baseline here is DF-CNN transferring all layers: add --config.learner=dfcnn.
"""

from configs import paper


def get_config(arg: str | None = None):
    """Returns the config; `arg="tiny"` shrinks the run for smoke tests."""
    return paper.get_paper_config("stl10_15", "static", arg)
