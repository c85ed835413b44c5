"""Competing methods of Table 1 (docs/protocol.md §10), run by the one lifelong loop."""

from lasem_jax.baselines.agem import AGEM
from lasem_jax.baselines.apd import APD
from lasem_jax.baselines.base import Baseline
from lasem_jax.baselines.darts import Darts
from lasem_jax.baselines.den import DEN
from lasem_jax.baselines.derpp import DERPP
from lasem_jax.baselines.er import ER
from lasem_jax.baselines.ewc import EWC
from lasem_jax.baselines.finetune import Finetune
from lasem_jax.baselines.lwf import LwF
from lasem_jax.baselines.prognn import ProgNN
from lasem_jax.baselines.si import SI
from lasem_jax.baselines.single_network import SingleNetwork

BASELINES: dict[str, type[Baseline]] = {
    cls.name: cls
    for cls in (SingleNetwork, APD, ProgNN, Darts, DEN, Finetune, EWC, SI, LwF, ER, AGEM, DERPP)
}


def register(cls: type[Baseline]) -> type[Baseline]:
    """Adds a competing method under `cls.name`: trained, resumed and loaded like the others.

    A new method is a module with a `Baseline` subclass and one line, `register(MyMethod)`
    (usable as a class decorator). Returns `cls`.

    Raises:
      ValueError: `cls.name` is already a method.
    """
    if cls.name in BASELINES or cls.name in ("lasem", "static", "single_task", "brute_force"):
        raise ValueError(f"A method named {cls.name!r} exists already; choose another name.")
    BASELINES[cls.name] = cls
    return cls


__all__ = [
    "AGEM",
    "APD",
    "BASELINES",
    "DEN",
    "DERPP",
    "ER",
    "EWC",
    "SI",
    "Baseline",
    "Darts",
    "Finetune",
    "LwF",
    "ProgNN",
    "SingleNetwork",
    "register",
]
