"""Session-wide test setup: compile without most XLA optimisations (tiny programs, many compiles).

Set in the environment too, so the launcher subprocesses the tests start compile the same way.
"""

import os

import jax

os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "1"
jax.config.update("jax_disable_most_optimizations", True)
