"""Competing methods of Table 1 (docs/protocol.md §10), run by the one lifelong loop."""

from lasem_jax.baselines.apd import APD
from lasem_jax.baselines.base import Baseline
from lasem_jax.baselines.darts import Darts
from lasem_jax.baselines.den import DEN
from lasem_jax.baselines.prognn import ProgNN
from lasem_jax.baselines.single_network import SingleNetwork

BASELINES: dict[str, type[Baseline]] = {
    cls.name: cls for cls in (SingleNetwork, APD, ProgNN, Darts, DEN)
}

__all__ = [
    "APD",
    "BASELINES",
    "DEN",
    "Baseline",
    "Darts",
    "ProgNN",
    "SingleNetwork",
]
