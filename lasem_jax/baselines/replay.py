"""A reservoir-sampled episodic memory (Vitter's algorithm R), pure and jittable."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

Buffer = dict[str, jax.Array]


def init_buffer(size: int, image_shape: Sequence[int], kmax: int, *, logits: bool) -> Buffer:
    """An empty memory of `size` examples.

    Returns:
      `{"x": [M, H, W, C], "y": [M] int32, "task": [M] int32, "seen": [] int32}` (examples of
      the stream so far) and, with `logits`, `"logits": [M, kmax]`.
    """
    buffer = {
        "x": jnp.zeros((size, *image_shape), jnp.float32),
        "y": jnp.zeros((size,), jnp.int32),
        "task": jnp.zeros((size,), jnp.int32),
        "seen": jnp.zeros((), jnp.int32),
    }
    if logits:
        buffer["logits"] = jnp.zeros((size, kmax), jnp.float32)
    return buffer


def add(buffer: Buffer, key: jax.Array, items: dict[str, jax.Array]) -> Buffer:
    """Offers a minibatch to the memory, example by example (reservoir sampling).

    Example n of the stream (n = `seen`) fills slot n while the memory is not full; later it
    replaces a uniformly drawn slot j ~ U{0..n} if j < M, so every example seen so far is kept
    with probability M / (n + 1).

    Args:
      buffer: the memory (`init_buffer`).
      key: the draws of this minibatch.
      items: per field of `buffer` but `seen`, the minibatch's `[B, ...]` values.

    Returns:
      The updated memory.
    """
    size = buffer["y"].shape[0]
    keys = jax.random.split(key, items["y"].shape[0])

    def offer(buf: Buffer, item: tuple) -> tuple[Buffer, None]:
        k, values = item
        n = buf["seen"]
        j = jax.random.randint(k, (), 0, jnp.maximum(n + 1, 1))
        slot = jnp.where(n < size, n, j)
        keep = slot < size
        slot = jnp.minimum(slot, size - 1)
        new = {
            name: buf[name].at[slot].set(jnp.where(keep, v, buf[name][slot]))
            for name, v in values.items()
        }
        return {**buf, **new, "seen": n + 1}, None

    buffer, _ = jax.lax.scan(offer, buffer, (keys, items))
    return buffer


def sample(
    buffer: Buffer, key: jax.Array, n: int, eligible: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """Draws up to `n` distinct filled (and `eligible`) slots uniformly, without replacement.

    Args:
      buffer: the memory.
      key: the draw's key.
      n: the sample size (at most the memory size is drawn).
      eligible: optional `[M]` bool restricting the slots.

    Returns:
      `(idx [min(n, M)], valid [min(n, M)] bool)`: fewer eligible slots than `n` leave the
      tail invalid.
    """
    size = buffer["y"].shape[0]
    ok = jnp.arange(size) < jnp.minimum(buffer["seen"], size)
    if eligible is not None:
        ok = ok & eligible
    scores = jnp.where(ok, jax.random.uniform(key, (size,)), 2.0)
    neg, idx = jax.lax.top_k(-scores, min(n, size))
    return idx, neg > -2.0
