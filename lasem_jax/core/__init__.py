"""The pure math of LASEM: EM, configuration space, prefix plans, metrics (jax, numpy only)."""
