"""Pure training and evaluation steps: LASEM's fused E/M step, the static step, epoch scans."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lasem_jax.core import em, search_space
from lasem_jax.native import conv as native_conv
from lasem_jax.networks.model import Model
from lasem_jax.storage import tree_io

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class StepConfig:
    """Hashable hyperparameters of the compiled step (a static argument of `jax.jit`).

    Attributes:
      method: `lasem` (all configurations, posterior-weighted) or `static` (one configuration,
        passed at run time as an `[L]` bool array, so one compiled step serves every task).
      likelihood: `product` (Eq. 2) or `mean` (Appendix D, reference code).
      prior: `laplace` (Eq. 1), `running_mean` (reference default) or `fixed` (Fig. 6).
      prior_init_count: Laplace pseudo-count.
      fixed_config: configuration name given probability `fixed_prob` by the fixed prior.
      fixed_prob: probability of `fixed_config`; the rest is spread uniformly.
      num_m_steps: M-steps per E-step; with 1 the conv pass is shared by E- and M-step.
      batch_size: minibatch size `B`.
      batch_devices: devices each minibatch is split over (data parallel; 1: none). The
        first `batch_devices` local devices; `B` must be a multiple of it.
      warmup: a warm-up epoch of LASEM (`em.warmup_epochs`): uniform prior, every
        configuration's loss weighted `1/C` in the M-step, and the prior left unchanged.
    """

    method: str = "lasem"
    likelihood: str = "product"
    prior: str = "laplace"
    prior_init_count: float = 1.0
    fixed_config: str = "top1"
    fixed_prob: float = 0.9
    num_m_steps: int = 1
    batch_size: int = 10
    batch_devices: int = 1
    warmup: bool = False


class TrainState(NamedTuple):
    """Everything the step changes: `{"shared", "task"}` params, optimiser, prior, rng."""

    params: dict
    opt_state: Any
    prior: em.PriorState
    rng: Array


tree_io.register_namedtuple("lasem_jax.TrainState", TrainState)
tree_io.register_namedtuple("lasem_jax.PriorState", em.PriorState)


def make_optimizer(learning_rate: float) -> optax.GradientTransformation:
    """TF1's RMSProp (docs/protocol.md §4): decay 0.9, eps 1e-10 in the sqrt, accumulator at 1.

    The learning rate is an injected hyperparameter, set once per epoch by `train_epoch`.
    """
    return optax.inject_hyperparams(optax.rmsprop)(
        learning_rate=learning_rate, decay=0.9, eps=1e-10, eps_in_sqrt=True, initial_scale=1.0
    )


def make_prior(model: Model, hp: StepConfig) -> em.Prior:
    """The prior named by `hp.prior` over `model.configs`."""
    if hp.prior == "laplace":
        return em.laplace_prior(init_count=hp.prior_init_count)
    if hp.prior == "running_mean":
        return em.running_mean_prior()
    if hp.prior == "fixed":
        config = search_space.named_config(hp.fixed_config, model.num_layers)
        index = search_space.config_index(model.configs, config)
        return em.fixed_prior(em.fixed_probs(model.num_configs, index, hp.fixed_prob))
    raise ValueError(f"Unknown prior {hp.prior!r}; use one of {em.PRIORS}.")


def init_state(model: Model, hp: StepConfig, params: dict, rng: Array, lr: float) -> TrainState:
    """A fresh optimiser and prior for a new task."""
    if hp.method == "lasem":
        prior = make_prior(model, hp).init(model.num_configs)
    else:
        prior = em.PriorState(jnp.zeros((1,), jnp.float32), jnp.zeros((), jnp.int32))
    return TrainState(params, make_optimizer(lr).init(params), prior, rng)


def _apply_grads(state: TrainState, grads: dict, rng: Array, prior: em.PriorState) -> TrainState:
    tx = make_optimizer(0.0)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    return TrainState(optax.apply_updates(state.params, updates), opt_state, prior, rng)


def _gradient_weights(hp: StepConfig, post: Array, log_prior: Array) -> Array:
    weights = jnp.exp(log_prior) if hp.prior == "fixed" or hp.warmup else post
    return jax.lax.stop_gradient(weights)


def _next_prior(
    hp: StepConfig, prior: em.Prior, state: em.PriorState, post: Array
) -> em.PriorState:
    return state if hp.warmup else prior.update(state, post)


def _m_objective(model: Model, params: dict, feats: Array, weights: Array, y: Array, rng: Array):
    nll = em.per_config_nll(model.head(params, feats, train=True, rng=rng), y)
    reg = model.regularizer(params, em.transfer_probability(weights, model.configs))
    return em.m_step_loss(weights, nll) + reg, nll


def lasem_step(
    model: Model, hp: StepConfig, state: TrainState, x: Array, y: Array
) -> tuple[TrainState, tuple[Array, Array]]:
    """One minibatch of LASEM: E-step (no dropout), `num_m_steps` M-steps, prior update.

    With `hp.warmup` the prior is uniform, the M-step weights every configuration `1/C` and
    the prior is not updated.

    Args:
      model: the all-configurations model.
      hp: step hyperparameters.
      state: the train state.
      x: `[B, H, W, C]` images.
      y: `[B]` labels.

    Returns:
      `(new_state, (loss, posterior [C]))`.
    """
    prior_fns = make_prior(model, hp)
    log_prior = prior_fns.log_prob(state.prior)
    if hp.warmup:
        log_prior = jnp.full_like(log_prior, -jnp.log(float(model.num_configs)))
    rng, *drop = jax.random.split(state.rng, hp.num_m_steps + 1)
    split = hp.batch_devices > 1  # Data parallel: keep each device's rows its own.

    def e_step(feats: Array, params: dict) -> Array:
        logits = jax.lax.stop_gradient(model.head(params, feats))
        return em.posterior(log_prior, em.config_log_likelihood(logits, y, mode=hp.likelihood))

    # One conv pass serves both steps: the E-step reads the head without dropout, the M-step with
    # it (README.md, section Performance).
    if hp.num_m_steps == 1:

        def fused(params: dict):
            feats = model.features_all(params, x, batch_major=split)
            post = e_step(feats, params)
            weights = _gradient_weights(hp, post, log_prior)
            loss, _ = _m_objective(model, params, feats, weights, y, drop[0])
            return loss, post

        (loss, post), grads = jax.value_and_grad(fused, has_aux=True)(state.params)
        new = _apply_grads(state, grads, rng, _next_prior(hp, prior_fns, state.prior, post))
        return new, (loss, post)

    post = e_step(model.features_all(state.params, x, batch_major=split), state.params)
    weights = _gradient_weights(hp, post, log_prior)

    def m_step(st: TrainState, key: Array):
        def objective(params: dict) -> Array:
            feats = model.features_all(params, x, batch_major=split)
            return _m_objective(model, params, feats, weights, y, key)[0]

        loss, grads = jax.value_and_grad(objective)(st.params)
        return _apply_grads(st, grads, st.rng, st.prior), loss

    state, losses = jax.lax.scan(m_step, state, jnp.stack(drop))
    new = state._replace(rng=rng, prior=_next_prior(hp, prior_fns, state.prior, post))
    return new, (losses[-1], post)


def static_step(
    model: Model, state: TrainState, x: Array, y: Array, config: Array
) -> tuple[TrainState, Array]:
    """One minibatch of a single network with configuration `config` `[L]` bool (traced).

    Returns:
      `(new_state, loss)`.
    """
    rng, drop = jax.random.split(state.rng)

    def objective(params: dict) -> Array:
        logits = model.apply_config(params, x, config, train=True, rng=drop)
        nll = em.per_config_nll(logits[None], y)[0]
        return nll + model.regularizer(params, config.astype(jnp.float32))

    loss, grads = jax.value_and_grad(objective)(state.params)
    return _apply_grads(state, grads, rng, state.prior), loss


def _rounds(n: int) -> int:
    """Sort rounds `jax.random.permutation` uses for `n` elements (its static stop criterion)."""
    return int(np.ceil(3 * np.log(max(1, n)) / np.log(np.iinfo(np.uint32).max)))


def _first_needing(rounds: int, size: int) -> int:
    """The smallest `n <= size` for which the permutation sorts `rounds` times (bisection)."""
    low, high = 1, size
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if _rounds(mid) >= rounds else (mid + 1, high)
    return low


def epoch_order(key: Array, n: Array, size: int) -> Array:
    """`jax.random.permutation(key, n)` for a traced `n <= size`, then `n, ..., size - 1`.

    The same sort rounds as jax's permutation (one stable sort by fresh random 32-bit keys per
    round) over `size` positions, with the keys of positions `>= n` set to the largest value so
    that the first `n` entries are exactly jax's permutation of `n` (tested against it: with
    jax's partitionable threefry, the random bits of position `i` do not depend on `size`).
    Rounds beyond the ones `n` needs are computed and discarded.

    Args:
      key: the shuffle's PRNG key.
      n: scalar int, how many leading positions are shuffled.
      size: the static length of the result.

    Returns:
      `[size]` int32 indices.
    """
    firsts = [_first_needing(r, size) for r in range(1, _rounds(size) + 1)]
    positions = jnp.arange(size, dtype=jnp.int32)
    order = positions
    for first in firsts:
        key, subkey = jax.random.split(key)
        keys = jnp.where(
            positions < n,
            jax.random.bits(subkey, (size,), jnp.uint32),
            jnp.uint32(np.iinfo(np.uint32).max),
        )
        _, shuffled = jax.lax.sort_key_val(keys, order)
        order = jnp.where(n >= first, shuffled, order)
    return order


def train_epoch(
    model: Model,
    hp: StepConfig,
    state: TrainState,
    x: Array,
    y: Array,
    lr: Array,
    config: Array,
    n: Array | None = None,
) -> tuple[TrainState, dict[str, Array]]:
    """One epoch: a seeded shuffle into `floor(n/B)` minibatches, run as one loop.

    With `n`, only the first `n` examples of `x` and `y` are the task's (the rest is padding, so
    tasks of different sizes share one compiled epoch): the shuffle is `epoch_order`, equal to
    the unpadded one, and a loop of `floor(n/B)` steps trains exactly what the unpadded epoch
    trains.

    Args:
      model: the model (static).
      hp: step hyperparameters (static).
      state: the train state.
      x: `[N, H, W, C]` the current task's training images, on the device.
      y: `[N]` labels.
      lr: scalar learning rate of this epoch.
      config: `[L]` bool configuration for `static` (ignored by `lasem`).
      n: scalar int, the task's examples (the first `n` of `N`); None: all `N`.

    Returns:
      The new state and `{"losses": [floor(N/B)] per-minibatch losses (with `n`: the first
      `floor(n/B)`, NaN after them), "posterior": [C] mean posterior}` (for `static`,
      `posterior` is a placeholder `[1]`).
    """
    steps = x.shape[0] // hp.batch_size
    rng, perm_key = jax.random.split(state.rng)
    if n is None:
        order = jax.random.permutation(perm_key, x.shape[0])
    else:
        order = epoch_order(perm_key, n, x.shape[0])
    order = order[: steps * hp.batch_size].reshape(steps, hp.batch_size)
    hyperparams = {**state.opt_state.hyperparams, "learning_rate": jnp.asarray(lr, jnp.float32)}
    state = state._replace(rng=rng, opt_state=state.opt_state._replace(hyperparams=hyperparams))

    def body(st: TrainState, idx: Array):
        xb, yb = x[idx], y[idx]
        if hp.batch_devices > 1:  # Data parallel: XLA partitions the step along the batch.
            mesh = jax.sharding.Mesh(np.array(jax.local_devices()[: hp.batch_devices]), ("b",))
            split = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("b"))
            xb = jax.lax.with_sharding_constraint(xb, split)
            yb = jax.lax.with_sharding_constraint(yb, split)
        # XLA partitions the data-parallel step itself: plain convolutions (`native_conv.plain`).
        with native_conv.plain() if hp.batch_devices > 1 else contextlib.nullcontext():
            if hp.method == "lasem":
                st, (loss, post) = lasem_step(model, hp, st, xb, yb)
            else:
                st, loss = static_step(model, st, xb, yb, config)
                post = st.prior.stats
        return st, (loss, post)

    if n is None:
        state, (losses, posts) = jax.lax.scan(body, state, order)
        return state, {"losses": losses, "posterior": posts.mean(axis=0)}

    def step(i: Array, carry: tuple) -> tuple:
        st, losses, post_sum = carry
        st, (loss, post) = body(st, order[i])
        return st, losses.at[i].set(loss), post_sum + post

    post_shape = jax.eval_shape(body, state, order[0])[1][1]
    carry = (state, jnp.full((steps,), jnp.nan), jnp.zeros(post_shape.shape, post_shape.dtype))
    valid = n // hp.batch_size
    state, losses, post_sum = jax.lax.fori_loop(0, valid, step, carry)
    return state, {"losses": losses, "posterior": post_sum / valid}


def chunked_accuracy(logits_fn: Any, x: Array, y: Array, *, chunk: int) -> Array:
    """Accuracy of `logits_fn(xb) -> [b, K]` on `x` `[N, ...]`, `y` `[N]`, `chunk` at a time."""
    n = x.shape[0]
    num_chunks = -(-n // chunk)
    pad = num_chunks * chunk - n
    xs = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1)).reshape(num_chunks, chunk, *x.shape[1:])
    ys = jnp.pad(y, (0, pad), constant_values=-1).reshape(num_chunks, chunk)
    return count_correct(logits_fn, xs, ys) / n


def count_correct(logits_fn: Any, xs: Array, ys: Array) -> Array:
    """Correct predictions (int32) of `logits_fn` on chunks `xs` `[M, b, ...]`, `ys` `[M, b]`.

    Labels below 0 mark padding rows and never count.
    """

    def correct(batch: tuple[Array, Array]) -> Array:
        xb, yb = batch
        pred = jnp.argmax(logits_fn(xb), axis=-1)
        return jnp.sum((pred == yb) & (yb >= 0))

    return jnp.sum(jax.lax.map(correct, (xs, ys)))


def accuracy(model: Model, params: dict, config: Array, x: Array, y: Array, *, chunk: int) -> Array:
    """Accuracy of configuration `config` `[L]` on `x` `[N, ...]`, evaluated `chunk` at a time."""
    return chunked_accuracy(lambda xb: model.apply_config(params, xb, config), x, y, chunk=chunk)


# One compiled evaluation shared by the trainer, DARTS and loaded models.
jitted_accuracy = jax.jit(accuracy, static_argnums=(0,), static_argnames=("chunk",))
