"""The embedded default: LASEM with HPS on 5 digit tasks (scikit-learn's digits, no download).

python -m launch.train --workdir=/tmp/lasem_digits
python -m launch.train --config=configs/default.py --config.learner=dfcnn --workdir=/tmp/x
python -m launch.train --config=configs/default.py:tiny --workdir=/tmp/lasem_tiny

The fields and their meaning live in `lasem_jax.config.defaults.default_config` (one source of
truth, also `lasem_jax.default_config()`); every other config file starts from it and overrides
fields.
`:tiny` is a smoke test (`lasem_jax.config.defaults.apply_tiny`).
"""

import ml_collections

from lasem_jax.config import defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Returns the default configuration; `arg="tiny"` shrinks it to a smoke test."""
    if arg not in (None, "", "tiny"):
        raise ValueError(f"Unknown config argument {arg!r}; use nothing or ':tiny'.")
    config = defaults.default_config()
    return defaults.apply_tiny(config) if arg == "tiny" else config
