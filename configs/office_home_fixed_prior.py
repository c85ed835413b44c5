"""Office-Home, 10 tasks: fixed-posterior ablation, Fig. 6 (LASEM DF-CNN, docs/protocol.md §1.10).

A fixed distribution replaces the posterior, both as gradient weights and for choosing the
configuration: probability P on Top-2 (FFTT, the best static configuration on Office-Home) and
(1 - P) spread uniformly over the other 15. The argument is `<P>[,tiny]` (default 0.9); the
paper varies P from 0.5 to 1.

python -m launch.train --config=configs/office_home_fixed_prior.py:0.7 --workdir=/tmp/lasem/fixed_07

Compare with configs/office_home_lasem.py --config.learner=dfcnn (the full LASEM DF-CNN).
Office-Home has no download: add --config.data.manual_dir=/path/to/OfficeHomeDataset.
"""

from configs import paper

DEFAULT_P = 0.9


def get_config(arg: str | None = None):
    """Returns the config of `arg` = `<P>[,tiny]` (or just `tiny`)."""
    prob, _, rest = (arg or str(DEFAULT_P)).partition(",")
    if prob == "tiny":
        prob, rest = str(DEFAULT_P), "tiny"
    try:
        p = float(prob)
    except ValueError as e:
        raise ValueError(
            f"Unknown argument {arg!r}; use a probability P, optionally ',tiny'."
        ) from e
    if not 0.0 <= p <= 1.0 or rest not in ("", "tiny"):
        raise ValueError(f"Unknown argument {arg!r}; use P in [0, 1], optionally ',tiny'.")
    c = paper.get_paper_config("office_home", "lasem", rest or None, learner="dfcnn")
    c.em.prior, c.em.fixed_config, c.em.fixed_prob = "fixed", "top2", p
    return c
