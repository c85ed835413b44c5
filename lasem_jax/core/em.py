"""LASEM's EM math in log space: likelihoods, posterior, priors and the M-step objective."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

LIKELIHOOD_MODES = ("product", "mean")
PRIORS = ("laplace", "running_mean", "fixed")


def _true_class_log_probs(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    """`[..., B]` log softmax at the true label, from logits `[..., B, K]` and labels `[B]`."""
    logp = jax.nn.log_softmax(jnp.asarray(logits, jnp.float32), axis=-1)
    labels = jnp.broadcast_to(jnp.asarray(labels), logp.shape[:-1])
    return jnp.take_along_axis(logp, labels[..., None], axis=-1)[..., 0]


def config_log_likelihood(
    logits: ArrayLike, labels: ArrayLike, *, mode: str = "product"
) -> jax.Array:
    """Log-likelihood of the minibatch under each configuration (Eq. 2).

    Args:
      logits: `[C, B, K]` logits of every configuration.
      labels: `[B]` integer labels in `0..K-1`.
      mode: `product`: `sum_i log p_c(y_i|x_i)`, Eq. 2 exactly. `mean`:
        `log (1/B) sum_i p_c(y_i|x_i)` computed as logsumexp minus log B, the Appendix D remedy
        for confident wrong predictions and what the reference code computes
        (docs/protocol.md §1.3).

    Returns:
      `[C]` log-likelihoods.

    Example:
      >>> logits = jnp.zeros((4, 3, 2))
      >>> config_log_likelihood(logits, jnp.array([0, 1, 0])).round(3)
      Array([-2.079, -2.079, -2.079, -2.079], dtype=float32)
    """
    ll = _true_class_log_probs(logits, labels)
    if mode == "product":
        return ll.sum(axis=-1)
    if mode == "mean":
        return jax.nn.logsumexp(ll, axis=-1) - jnp.log(ll.shape[-1])
    raise ValueError(f"Unknown likelihood mode {mode!r}; use one of {LIKELIHOOD_MODES}.")


def posterior(log_prior: ArrayLike, log_lik: ArrayLike) -> jax.Array:
    """Posterior over configurations, `softmax(log_prior + log_lik)` (E-step).

    Args:
      log_prior: `[C]` log prior (entries may be -inf, not all of them).
      log_lik: `[C]` log-likelihoods.

    Returns:
      `[C]` probabilities summing to 1.
    """
    return jax.nn.softmax(jnp.asarray(log_prior) + jnp.asarray(log_lik))


def per_config_nll(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    """`[C]` mean cross-entropy of each configuration, `-(1/B) log P(y|X,c)` in product form."""
    return -_true_class_log_probs(logits, labels).mean(axis=-1)


def m_step_loss(post: ArrayLike, nll: ArrayLike) -> jax.Array:
    """M-step objective `sum_c stop_gradient(post_c) * nll_c` (Eq. 3-4).

    Its gradient w.r.t. a parameter is the posterior-weighted sum of the per-configuration
    gradients; configurations that do not use the parameter contribute zero, which gives the
    restricted sums of Eq. 3 (shared, c_l = 1) and Eq. 4 (task-specific, c_l = 0). The
    per-configuration loss is the minibatch *mean* cross-entropy, as in the reference code
    (this only rescales the learning rate relative to Eq. 2's sum).
    """
    return jnp.sum(jax.lax.stop_gradient(jnp.asarray(post)) * jnp.asarray(nll))


def transfer_probability(post: ArrayLike, configs: ArrayLike) -> jax.Array:
    """`[L]` marginal probability that each layer transfers: `post [C] @ configs [C, L]`."""
    return jnp.asarray(post) @ jnp.asarray(configs, jnp.float32)


class PriorState(NamedTuple):
    """Prior bookkeeping for the current task.

    Attributes:
      stats: `[C]` Laplace counts, sum of posteriors, or the fixed probabilities.
      count: number of minibatches seen in this task.
    """

    stats: jax.Array
    count: jax.Array


class Prior(NamedTuple):
    """A prior as pure functions, in the style of an optax transformation."""

    init: Callable[[int], PriorState]
    update: Callable[[PriorState, jax.Array], PriorState]
    log_prob: Callable[[PriorState], jax.Array]


def laplace_prior(*, init_count: float = 1.0) -> Prior:
    """Eq. 1: `pi_c = (n_c + init_count) / sum`, n_c = minibatches whose MAP config was c.

    Ties in the MAP resolve to the lowest index, as numpy's argmax in the reference code.
    """

    def init(num_configs: int) -> PriorState:
        return PriorState(
            jnp.full((num_configs,), init_count, jnp.float32), jnp.zeros((), jnp.int32)
        )

    def update(state: PriorState, post: jax.Array) -> PriorState:
        winner = jax.nn.one_hot(jnp.argmax(post), state.stats.shape[0], dtype=jnp.float32)
        return PriorState(state.stats + winner, state.count + 1)

    def log_prob(state: PriorState) -> jax.Array:
        return jnp.log(state.stats) - jnp.log(jnp.sum(state.stats))

    return Prior(init, update, log_prob)


def running_mean_prior() -> Prior:
    """Spec 1.4, the reference default: mean of the task's posteriors so far (uniform at first)."""

    def init(num_configs: int) -> PriorState:
        return PriorState(jnp.zeros((num_configs,), jnp.float32), jnp.zeros((), jnp.int32))

    def update(state: PriorState, post: jax.Array) -> PriorState:
        return PriorState(state.stats + post, state.count + 1)

    def log_prob(state: PriorState) -> jax.Array:
        uniform = jnp.full_like(state.stats, -jnp.log(state.stats.shape[0]))
        mean = jnp.log(state.stats) - jnp.log(jnp.maximum(state.count, 1).astype(jnp.float32))
        return jnp.where(state.count > 0, mean, uniform)

    return Prior(init, update, log_prob)


def fixed_prior(probs: ArrayLike) -> Prior:
    """A constant probability vector `[C]` (the Fig. 6 ablation); updates change nothing."""
    probs = jnp.asarray(probs, jnp.float32)

    def init(num_configs: int) -> PriorState:
        if num_configs != probs.shape[0]:
            raise ValueError(f"Fixed prior has {probs.shape[0]} entries, need {num_configs}.")
        return PriorState(probs, jnp.zeros((), jnp.int32))

    def update(state: PriorState, post: jax.Array) -> PriorState:
        del post
        return PriorState(state.stats, state.count + 1)

    def log_prob(state: PriorState) -> jax.Array:
        return jnp.log(state.stats)

    return Prior(init, update, log_prob)


def fixed_probs(num_configs: int, index: int, p: float) -> jax.Array:
    """`[C]` with `p` at `index` and `(1 - p) / (C - 1)` elsewhere (docs/protocol.md §1.10)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"Fixed probability must be in [0, 1], got {p}.")
    if not 0 <= index < num_configs:
        raise ValueError(f"Fixed configuration index {index} is outside 0..{num_configs - 1}.")
    rest = (1.0 - p) / max(num_configs - 1, 1)
    return jnp.full((num_configs,), rest, jnp.float32).at[index].set(p)
