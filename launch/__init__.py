"""Command-line entry points of lasem_jax."""
