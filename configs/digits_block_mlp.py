"""LASEM with HPS over a user-defined 3-block MLP (`examples/blocks.py`) on the 5 digit tasks.

python -m launch.train --config=configs/digits_block_mlp.py --workdir=/tmp/lasem_mlp
python -m launch.train --config.model.arch=examples.blocks:digits_mlp --workdir=/tmp/lasem_mlp

The network comes from the import path in `config.model.arch`; everything else is the default
(`lasem_jax.config.defaults.default_config`), except the width (64 units per block). `:tiny` is a
smoke test (`lasem_jax.config.defaults.apply_tiny`).
"""

import ml_collections

from lasem_jax.config import defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The default configuration with the example MLP; `arg="tiny"` shrinks it to a smoke test."""
    if arg not in (None, "", "tiny"):
        raise ValueError(f"Unknown config argument {arg!r}; use nothing or ':tiny'.")
    config = defaults.default_config()
    config.model.arch = "examples.blocks:digits_mlp"
    config.model.width = 1.0
    return defaults.apply_tiny(config) if arg == "tiny" else config
