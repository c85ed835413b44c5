"""STL-10, 20 tasks: LASEM.

20 three-way tasks with noise and channel swaps, 25% of the data, 6 conv layers.
LASEM with the Laplace prior (Eq. 1) and the product likelihood (Eq. 2).

python -m launch.train --config=configs/stl10_20_lasem.py --workdir=/tmp/lasem/stl10_20_lasem

Base learner HPS; add --config.learner=tf or --config.learner=dfcnn for the others.
Smoke test (3 epochs, width 0.25, lr 1e-2): --config=configs/stl10_20_lasem.py:tiny

The paper's TF runs here use FC hidden (128,) instead of (128, 16) (docs/protocol.md §2.3): for TF
use configs/stl10_20_lasem_tf.py.
"""

from configs import paper


def get_config(arg: str | None = None):
    """Returns the config; `arg="tiny"` shrinks the run for smoke tests."""
    return paper.get_paper_config("stl10_20", "lasem", arg)
