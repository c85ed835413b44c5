"""Competing lifelong methods (Table 1, spec 10) run by the same loop, data and metrics."""

from lasem_jax.baselines.base import Baseline
from lasem_jax.baselines.loop import train_baseline
from lasem_jax.baselines.single_network import SingleNetwork

BASELINES: dict[str, type[Baseline]] = {cls.name: cls for cls in (SingleNetwork,)}

__all__ = ["BASELINES", "Baseline", "SingleNetwork", "train_baseline"]
