"""Lifelong-learning scenarios (task sequences) for lasem_jax."""

from lasem_jax.data.digits import make_digits_tasks

__all__ = ["make_digits_tasks"]
