"""The interface of a competing lifelong method and the pure pieces methods share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lasem_jax.core import layout
from lasem_jax.core.frozen import RunConfig
from lasem_jax.engine import steps
from lasem_jax.networks import layers
from lasem_jax.networks.architectures import get_architecture
from lasem_jax.networks.blocks import BlockNetwork
from lasem_jax.task import Task

Array = jax.Array
Params = dict[str, Any]
LossFn = Callable[[Params, Any, Array, Array, Array], Array]


class Baseline:
    """A competing lifelong method, driven by `training.baseline_method.BaselineRun`.

    The loop calls, per task t: `start_task(t, key)`, then per epoch `train_epoch(t, x, y, lr)`
    and `accuracy(k, x, y)` for every seen task k <= t, then `end_task(t)`. A method keeps its
    parameters as pytrees on `self`; the math lives in pure (jitted) functions.

    Attributes:
      name: the `config.method` value.
      uses_learner: whether `config.learner` (HPS/TF/DF-CNN) parameterises the method.
      config: the run's config.
      tasks: the task sequence (validated).
      arch: the architecture every task network uses (`config.model`).
    """

    name: ClassVar[str] = ""
    uses_learner: ClassVar[bool] = False  # results name config.learner, else "none"

    def __init__(self, config: RunConfig, tasks: Sequence[Task]) -> None:
        self.config, self.tasks = config, list(tasks)
        m = config.model
        self.arch = get_architecture(
            m.arch, width=m.width, input_shape=tasks[0].image_shape, fc_hidden=m.fc_hidden
        )
        if not self.arch.is_conv:
            raise ValueError(
                f"method {self.name} runs on networks of ConvBlocks; config.model.arch="
                f"{m.arch!r} has other blocks (use method lasem, static, single_task or "
                "brute_force)."
            )
        self.he = bool(m.he_init)
        chunk = int(config.train.eval_chunk)
        self._jit_logits = jax.jit(
            lambda state, k, x: chunked_logits(
                lambda xb: self.predict(state, k, xb), x, chunk=chunk
            ),
            static_argnums=1,
        )

    def start_task(self, t: int, key: Array) -> None:
        """Prepares the parameters and optimiser of task `t` (fresh ones, from `key`)."""
        raise NotImplementedError

    def train_epoch(self, t: int, x: Array, y: Array, lr: float) -> np.ndarray:
        """Trains task `t` for one epoch on `x` `[N, H, W, C]`, `y` `[N]`; minibatch losses."""
        raise NotImplementedError

    def accuracy(self, k: int, x: Array, y: Array) -> float:
        """Accuracy of task `k` (already seen) on `x`, `y` with the current parameters."""
        raise NotImplementedError

    def accuracy_at_init(self, t: int, first_key: Array, x: Array, y: Array) -> float | None:
        """Accuracy of task `t`, just started, with the run's parameters at initialisation.

        The shared parameters `start_task(0, first_key)` drew, with task `t`'s fresh task
        parameters (forward transfer's `b_t`, `core.metrics.forward_transfer`). None (the
        default): the method has no such model.
        """
        del t, first_key, x, y
        return None

    def end_task(self, t: int) -> None:
        """Finishes task `t` (freezing, consolidation, ...)."""

    def chosen_config(self, t: int) -> np.ndarray | None:
        """`[L]` bool transfer configuration of task `t` if the method chooses one."""
        del t
        return None

    def num_parameters(self) -> int:
        """Scalars some seen task's prediction reads (what a deployed model must store)."""
        raise NotImplementedError

    def predict_state(self) -> Params:
        """Everything `predict` needs to serve every task seen so far (no optimiser state).

        A tree of dicts (string keys), lists, tuples and arrays; the current task, while one is
        being trained, is included as `accuracy` evaluates it.
        """
        raise NotImplementedError

    def load_predict_state(self, state: Params) -> None:
        """Makes a fresh object serve the tasks of `state` (`predict_state`, maybe reloaded).

        Afterwards `logits` and `accuracy` give what the object that saved `state` gave.
        """
        raise NotImplementedError

    def predict(self, state: Params, k: int, x: Array) -> Array:
        """Eval-mode logits `[N, K_k]` of task `k` on `x` `[N, H, W, C]`, pure in `state`.

        Differentiable with respect to the floating-point arrays of `state`.
        """
        raise NotImplementedError

    def logits(self, k: int, x: Array) -> Array:
        """`predict(predict_state(), k, x)`: `[N, K_k]` logits of task `k`, jitted and chunked."""
        return self._jit_logits(self.predict_state(), k, jnp.asarray(x))

    def train_state(self) -> Params:
        """Everything that determines the rest of the run, at an epoch or task boundary.

        A tree of dicts (string keys), lists, tuples, NamedTuples (optimiser states), None,
        Python scalars and arrays; `load_train_state` on a fresh object resumes bitwise.
        """
        raise NotImplementedError

    def load_train_state(self, state: Params) -> None:
        """Restores `train_state()` (maybe reloaded with NumPy arrays) into a fresh object."""
        raise NotImplementedError


def to_device(tree: Any) -> Any:
    """`tree` with its NumPy arrays as JAX arrays; containers and Python scalars unchanged."""
    return jax.tree.map(
        lambda v: jnp.asarray(v) if isinstance(v, np.ndarray | np.generic) else v, tree
    )


def chunked_logits(logits_fn: Callable[[Array], Array], x: Array, *, chunk: int) -> Array:
    """`logits_fn(xb) -> [b, K]` on `x` `[N, ...]`, `chunk` rows at a time -> `[N, K]`."""
    n = x.shape[0]
    chunk = max(1, min(chunk, n))
    num_chunks = -(-n // chunk)
    pad = num_chunks * chunk - n
    xs = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1)).reshape(num_chunks, chunk, *x.shape[1:])
    out = jax.lax.map(logits_fn, xs)
    return out.reshape(num_chunks * chunk, -1)[:n]


def init_plain_convs(rng: np.random.Generator, arch: BlockNetwork, *, he: bool) -> Params:
    """`{"layer_i": {"w": [k, k, c_in, c_out], "b": [c_out]}}` for every conv layer."""
    return {
        layout.layer_key(i): layers.init_conv(
            rng, layer.kernel, arch.in_channels(i), layer.channels, he=he
        )
        for i, layer in enumerate(arch.layers)
    }


def init_head(rng: np.random.Generator, arch: BlockNetwork, num_classes: int, *, he: bool) -> dict:
    """The FC head of `arch` with `num_classes` outputs."""
    return layers.init_head(rng, arch.feature_dim, arch.fc_hidden, num_classes, he=he)


def conv_stack(
    arch: BlockNetwork, x: Array, layer_fn: Callable[[int, Array], Array]
) -> tuple[Array, list[Array]]:
    """Runs the conv stack of `arch` with a custom layer.

    Args:
      arch: the architecture (pools and identity shortcuts).
      x: `[B, H, W, C]` images.
      layer_fn: `(i, h) -> z`, the post-activation output of conv layer i on its input h.

    Returns:
      Flattened features `[B, F]` and the input of every layer (`[B, H_i, W_i, C_i]` each).
    """
    skip_into = {j: i for i, j in arch.skips}
    inputs: list[Array] = []
    h = x
    for i, layer in enumerate(arch.layers):
        inputs.append(h)
        z = layer_fn(i, h)
        if i in skip_into:
            src = inputs[skip_into[i]]
            for pooled in arch.layers[skip_into[i] : i]:
                src = layers.max_pool(src, pooled.pool)
            z = z + src
        h = layers.max_pool(z, layer.pool)
    return h.reshape(h.shape[0], -1), inputs


def plain_layer(convs: Params) -> Callable[[int, Array], Array]:
    """The layer function `relu(conv(h, w_i) + b_i)` of plain kernels `convs`."""
    return lambda i, h: jax.nn.relu(
        layers.conv2d(h, convs[layout.layer_key(i)]["w"]) + convs[layout.layer_key(i)]["b"]
    )


def cross_entropy(logits: Array, y: Array) -> Array:
    """Mean softmax cross-entropy of `[B, K]` logits and `[B]` int labels."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def with_lr(opt_state: Any, lr: Array) -> Any:
    """`opt_state` of `steps.make_optimizer` with its learning rate set to `lr`."""
    hyper = {**opt_state.hyperparams, "learning_rate": jnp.asarray(lr, jnp.float32)}
    return opt_state._replace(hyperparams=hyper)


def minibatches(rng: Array, n: int, batch_size: int) -> Array:
    """`[floor(n/B), B]` indices of a seeded shuffle (the remainder is dropped, as in LASEM)."""
    num = n // batch_size
    return jax.random.permutation(rng, n)[: num * batch_size].reshape(num, batch_size)


def sgd_epoch(
    loss_fn: LossFn,
    batch_size: int,
    params: Params,
    opt_state: Any,
    rng: Array,
    frozen: Any,
    x: Array,
    y: Array,
    lr: Array,
) -> tuple[Params, Any, Array, Array]:
    """One epoch of RMSProp (TF1) on `loss_fn(params, frozen, xb, yb, dropout_rng)`.

    Jit with `loss_fn` and `batch_size` static (see `make_epoch`).

    Returns:
      `(params, opt_state, rng, losses [floor(N/B)])`.
    """
    rng, perm = jax.random.split(rng)
    tx = steps.make_optimizer(0.0)

    def body(carry: tuple, idx: Array) -> tuple[tuple, Array]:
        p, o, r = carry
        r, drop = jax.random.split(r)
        loss, grads = jax.value_and_grad(loss_fn)(p, frozen, x[idx], y[idx], drop)
        updates, o = tx.update(grads, o, p)
        return (optax.apply_updates(p, updates), o, r), loss

    carry = (params, with_lr(opt_state, lr), rng)
    (params, opt_state, rng), losses = jax.lax.scan(
        body, carry, minibatches(perm, len(x), batch_size)
    )
    return params, opt_state, rng, losses


def make_epoch(loss_fn: LossFn, batch_size: int) -> Callable[..., tuple]:
    """`sgd_epoch` jitted for one loss: `(params, opt_state, rng, frozen, x, y, lr)`."""

    def epoch(
        params: Params, opt_state: Any, rng: Array, frozen: Any, x: Array, y: Array, lr: Array
    ):
        return sgd_epoch(loss_fn, batch_size, params, opt_state, rng, frozen, x, y, lr)

    return jax.jit(epoch)


def make_accuracy(logits_fn: Callable[[Any, Array], Array], chunk: int) -> Callable[..., Array]:
    """Jitted `(params, x, y) -> accuracy` of `logits_fn(params, xb) -> [b, K]`, chunked."""

    def acc(params: Any, x: Array, y: Array) -> Array:
        return steps.chunked_accuracy(lambda xb: logits_fn(params, xb), x, y, chunk=chunk)

    return jax.jit(acc)
