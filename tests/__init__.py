"""Tests of lasem_jax."""
