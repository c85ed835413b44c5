"""STL-10, 20 tasks: LASEM with tensor factorisation (TF).

20 three-way tasks with noise and channel swaps, 25% of the data, 6 conv layers.
LASEM with the Laplace prior (Eq. 1) and the product likelihood (Eq. 2).
TF with FC hidden (128,) instead of (128, 16), as in the paper's runs (docs/protocol.md §2.3).

python -m launch.train --config=configs/stl10_20_lasem_tf.py --workdir=/tmp/lasem/stl10_20_lasem_tf

Smoke test (3 epochs, width 0.25, lr 1e-2): --config=configs/stl10_20_lasem_tf.py:tiny

This file keeps the (128,) head even if --config.learner is overridden; for HPS or
DF-CNN use configs/stl10_20_lasem.py.
"""

from configs import paper


def get_config(arg: str | None = None):
    """Returns the config; `arg="tiny"` shrinks the run for smoke tests."""
    return paper.get_paper_config("stl10_20", "lasem", arg, learner="tf")
