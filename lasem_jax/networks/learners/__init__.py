"""Base learners (HPS, TF, DF-CNN), chosen by name."""

from __future__ import annotations

from typing import Any

from lasem_jax.networks.learners.base import Learner
from lasem_jax.networks.learners.dfcnn import DFCNN
from lasem_jax.networks.learners.hps import HPS
from lasem_jax.networks.learners.tf import TensorFactorization

LEARNERS: dict[str, type[Learner]] = {"hps": HPS, "tf": TensorFactorization, "dfcnn": DFCNN}


def get_learner(name: str, **hparams: Any) -> Learner:
    """Returns the learner called `name` (`hps`, `tf` or `dfcnn`) with the given hyperparameters.

    Raises:
      ValueError: unknown name or a hyperparameter the learner does not have.
    """
    if name not in LEARNERS:
        raise ValueError(f"Unknown learner {name!r}; choose one of {', '.join(LEARNERS)}.")
    try:
        return LEARNERS[name](**hparams)
    except TypeError as e:
        raise ValueError(f"Bad hyperparameters {sorted(hparams)} for learner {name!r}: {e}") from e


__all__ = ["DFCNN", "HPS", "LEARNERS", "Learner", "TensorFactorization", "get_learner"]
