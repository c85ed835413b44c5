"""STL-10, 15 tasks: LASEM.

15 five-way tasks (Appendix D), 10% of the data, 9 conv layers.
LASEM with the Laplace prior (Eq. 1) and the product likelihood (Eq. 2).

python -m launch.train --config=configs/stl10_15_lasem.py --workdir=/tmp/lasem/stl10_15_lasem

Base learner HPS; add --config.learner=tf or --config.learner=dfcnn for the others.
Smoke test (3 epochs, width 0.25, lr 1e-2): --config=configs/stl10_15_lasem.py:tiny

Group-based LASEM: partition ((0, 1, 2), (3, 4, 5), (6, 7, 8)), 8 configurations.
The paper ran this scenario with DF-CNN: add --config.learner=dfcnn.
"""

from configs import paper


def get_config(arg: str | None = None):
    """Returns the config; `arg="tiny"` shrinks the run for smoke tests."""
    return paper.get_paper_config("stl10_15", "lasem", arg)
