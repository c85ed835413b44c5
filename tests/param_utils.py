"""Test helper: random parameters at scales that keep activations of order one."""

import math

import jax
import jax.numpy as jnp
import numpy as np


def _std(name, shape):
    """Standard deviation of one parameter tensor, by its name."""
    if name in ("u1", "u2", "u3", "u4"):  # TF factors: near-orthogonal scale
        return 1.0 / math.sqrt(shape[0])
    if name == "kb":
        return 1.0
    if name == "deconv_w":  # ~ (3/2)^2 taps times c_kb inputs per output
        return 1.0 / math.sqrt(2.0 * shape[-1])
    if name == "tensor":  # W = P . T with a He-like result
        return math.sqrt(2.0 / (9.0 * shape[0] * shape[1]))
    if name in ("w", "core"):  # plain weights, TF core: He
        return math.sqrt(2.0 / math.prod(shape[:-1]))
    raise AssertionError(f"unexpected parameter {name} {shape}")


def random_params(model, seed):
    """Parameters in `model.init`'s structure, drawn so deep nets give distinct logits.

    The paper's initialisation (trunc-normal 0.05) shrinks activations through 9-17 tiny
    layers until every configuration's logits nearly coincide, which would let comparisons
    between configurations pass trivially.
    """
    shapes = model.init(jax.random.PRNGKey(0))
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        name = path[-1].key
        if name in ("b", "deconv_b"):
            value = 0.1 + 0.05 * rng.standard_normal(leaf.shape)
        else:
            value = _std(name, leaf.shape) * rng.standard_normal(leaf.shape)
        return jnp.asarray(value, jnp.float32)

    return jax.tree_util.tree_map_with_path(draw, shapes)
