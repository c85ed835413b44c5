"""A task network of blocks that evaluates every transfer configuration in one call, or one."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lasem_jax.core import layout, prefix_plan, search_space
from lasem_jax.networks import layers
from lasem_jax.networks.architectures import get_architecture
from lasem_jax.networks.blocks import BlockNetwork, ConvBlock, apply_block, init_block
from lasem_jax.networks.learners import Learner, get_learner

Array = jax.Array
Params = dict[str, Any]


class Model:
    """All `C` configuration networks of one task, sharing every tensor.

    Parameters are `{"shared": {"layer_i": ...}, "task": {"conv": {"layer_i": ...},
    "map": {"layer_i": ...}, "head": {...}}}`: block i of configuration c uses the learner's
    transfer path (shared params + the task's mapping) if `configs[c, i]`, else the block with
    the task's own parameters (`conv`, named after the paper's conv layers). On a `ConvBlock`
    the learner generates the transfer kernel; on any other block (HPS only) the transfer path
    is the block with the shared parameters. Models hash by value, so they can be static
    arguments of `jax.jit`.

    Attributes:
      arch: the network (`BlockNetwork`).
      learner: the base learner.
      num_classes: outputs `K` of the head.
      partition: block groups, or None for one group per block.
    The configurations (`configs`, `[C, L]` bool, in `enumerate_configs` order) and the prefix
    plan are built on first use.
    """

    def __init__(
        self,
        arch: BlockNetwork,
        learner: Learner,
        num_classes: int,
        partition: Sequence[Sequence[int]] | None = None,
    ) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}.")
        self.arch, self.learner, self.num_classes = arch, learner, int(num_classes)
        groups = search_space.validate_partition(arch.num_layers, partition)
        self.partition = None if partition is None else tuple(tuple(g) for g in groups)
        self._skip_into = {j: i for i, j in arch.skips}
        for i, block in enumerate(arch.blocks):  # Fail early on blocks the learner cannot use.
            if isinstance(block, ConvBlock):
                self.learner.init_shared(np.random.default_rng(0), block, 1)
            elif not learner.any_block:
                raise ValueError(
                    f"Learner {learner.name!r} generates convolution kernels, but block {i} is a "
                    f"{type(block).__name__}, not a ConvBlock; use hps on other blocks."
                )
        self._keyed = not arch.is_conv

    def _key(self) -> tuple:
        return (self.arch, self.learner, self.num_classes, self.partition)

    def __hash__(self) -> int:
        return hash(self._key())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Model) and self._key() == other._key()

    @functools.cached_property
    def configs(self) -> np.ndarray:
        """`[C, L]` bool configurations, built on first use (a static run never needs them)."""
        return search_space.enumerate_configs(self.num_layers, self.partition)

    @functools.cached_property
    def plan(self) -> prefix_plan.PrefixPlan:
        """The static prefix-sharing plan of `features_all`."""
        owner = search_space.layer_to_group(self.num_layers, self.partition)
        return prefix_plan.make_plan(self.configs, owner)

    @property
    def num_layers(self) -> int:
        """Number of blocks `L`."""
        return self.arch.num_layers

    @property
    def num_configs(self) -> int:
        """Number of configurations `C`."""
        return self.configs.shape[0]

    def _block_keys(self, rng: Array) -> list[Array | None]:
        """One key per non-conv block (Flax init), None for `ConvBlock`s (NumPy draws)."""
        keys = list(jax.random.split(rng, self.num_layers)) if self._keyed else []
        return [
            None if isinstance(block, ConvBlock) else keys[i]
            for i, block in enumerate(self.arch.blocks)
        ]

    def init_shared(self, rng: Array) -> Params:
        """Fresh shared parameters `{"layer_i": ...}` of every block, drawn from the key `rng`.

        A `ConvBlock`'s come from the learner, drawn with NumPy in block order (TF1's
        initialisers, the values of earlier runs); other blocks' from their Flax initialisers.
        """
        gen = layers.generator(rng)
        shared = {}
        for i, (block, key) in enumerate(zip(self.arch.blocks, self._block_keys(rng), strict=True)):
            shape = self.arch.shapes[i]
            if key is None:
                shared[layout.layer_key(i)] = self.learner.init_shared(gen, block, shape[-1])
            else:
                shared[layout.layer_key(i)] = init_block(block, key, shape)
        return shared

    def init_task(self, rng: Array) -> Params:
        """Fresh task-specific parameters: plain blocks, learner mappings and the FC head."""
        gen = layers.generator(rng)
        conv, maps = {}, {}
        for i, (block, key) in enumerate(zip(self.arch.blocks, self._block_keys(rng), strict=True)):
            shape = self.arch.shapes[i]
            if key is None:
                conv[layout.layer_key(i)] = layers.init_conv(
                    gen, block.kernel, shape[-1], block.channels, he=self.learner.he_init
                )
                maps[layout.layer_key(i)] = self.learner.init_map(gen, block, shape[-1])
            else:
                conv[layout.layer_key(i)], maps[layout.layer_key(i)] = (
                    init_block(block, key, shape),
                    {},
                )
        head = layers.init_head(
            gen,
            self.arch.feature_dim,
            self.arch.fc_hidden,
            self.num_classes,
            he=self.learner.he_init,
        )
        return {"conv": conv, "map": maps, "head": head}

    def init(self, rng: Array) -> Params:
        """Fresh `{"shared": ..., "task": ...}` parameters."""
        shared_key, task_key = jax.random.split(rng)
        return {"shared": self.init_shared(shared_key), "task": self.init_task(task_key)}

    def _kernels(self, params: Params, i: int) -> tuple[tuple[Array, Array], tuple[Array, Array]]:
        name = layout.layer_key(i)
        transfer = self.learner.transfer_kernel(
            params["shared"][name], params["task"]["map"][name], self.arch.layers[i]
        )
        specific = params["task"]["conv"][name]
        return transfer, (specific["w"], specific["b"])

    def layer_kernels(
        self, params: Params, i: int
    ) -> tuple[tuple[Array, Array], tuple[Array, Array]]:
        """Both paths of `ConvBlock` `i`: `((w_t, b_t), (w_s, b_s))`, transfer then specific.

        Kernels are `[k, k, c_in, c_out]` and biases `[c_out]`; the transfer path is the
        learner's (shared params + the task's mapping), the other the task's plain conv.
        """
        if not isinstance(self.arch.blocks[i], ConvBlock):
            raise ValueError(f"Block {i} is not a ConvBlock; it has no kernels.")
        return self._kernels(params, i)

    def block_params(self, params: Params, i: int) -> tuple[Params, Params]:
        """Both paths of block `i` as parameters of the block: transfer, then task-specific."""
        name = layout.layer_key(i)
        if not isinstance(self.arch.blocks[i], ConvBlock):
            return params["shared"][name], params["task"]["conv"][name]
        (w_t, b_t), _ = self._kernels(params, i)
        return {"w": w_t, "b": b_t}, params["task"]["conv"][name]

    def _pool_skip(self, src: Array, i: int, j: int) -> Array:
        for layer in self.arch.layers[i:j]:
            src = layers.max_pool(src, layer.pool)
        return src

    def features_all(self, params: Params, x: Array, *, batch_major: bool = False) -> Array:
        """Flattened block features of every configuration, sharing common prefixes.

        Args:
          params: `{"shared", "task"}` parameters.
          x: `[B, ...]` inputs (`[B, H, W, Cin]` images for conv networks).
          batch_major: keep the prefixes' activations as `[B, P, ...]` rather than
            `[P, B, ...]`. The same numbers; with the batch split over devices (data
            parallel) folding the prefixes into a batch-major axis keeps each device's rows
            its own, where the prefix-major fold would gather the whole batch.

        Returns:
          `[C, B, F]` features, row c for `configs[c]`.
        """
        batch, ax = x.shape[0], int(batch_major)  # ax: the prefix axis
        h = jnp.expand_dims(x, ax)
        layer_inputs: dict[int, Array] = {}
        for i, (layer, step) in enumerate(zip(self.arch.layers, self.plan.steps, strict=True)):
            if not isinstance(layer, ConvBlock):
                h = self._block_all(params, i, h, step, ax)
                continue
            layer_inputs[i] = h
            (w_t, b_t), (w_s, b_s) = self._kernels(params, i)
            if step.branch:
                z = _conv_prefixes(h, jnp.concatenate([w_t, w_s], axis=-1))
                c = layer.channels
                z = jnp.concatenate([z[..., :c] + b_t, z[..., c:] + b_s], axis=ax)
            else:
                z_t = _conv_prefixes(jnp.take(h, step.transfer_idx, axis=ax), w_t) + b_t
                z_s = _conv_prefixes(jnp.take(h, step.specific_idx, axis=ax), w_s) + b_s
                z = jnp.concatenate([z_t, z_s], axis=ax)
            z = jax.nn.relu(z)
            if i in self._skip_into:
                src = self._skip_into[i]
                pool = functools.partial(self._pool_skip, i=src, j=i)
                skip = _map_prefixes(layer_inputs[src], pool)
                z = z + jnp.take(skip, self.plan.ancestors(src, i), axis=ax)
            h = _map_prefixes(z, lambda t, p=layer.pool: layers.max_pool(t, p))
        if batch_major:
            return jnp.swapaxes(h.reshape(batch, h.shape[1], -1)[:, self.plan.config_rows], 0, 1)
        return h.reshape(h.shape[0], batch, -1)[self.plan.config_rows]

    def _block_all(
        self, params: Params, i: int, h: Array, step: prefix_plan.LayerStep, ax: int
    ) -> Array:
        """A non-conv block on prefixes (axis `ax`): each path applied to its prefixes.

        A `ConvBlock` instead runs both paths of a branch as one convolution with the two
        kernels concatenated (`features_all`), which a generic block cannot.
        """
        block = self.arch.blocks[i]
        p_t, p_s = self.block_params(params, i)
        if step.branch:
            h_t = h_s = h
        else:
            h_t = jnp.take(h, step.transfer_idx, axis=ax)
            h_s = jnp.take(h, step.specific_idx, axis=ax)
        z_t = _map_prefixes(h_t, functools.partial(apply_block, block, p_t))
        z_s = _map_prefixes(h_s, functools.partial(apply_block, block, p_s))
        return jnp.concatenate([z_t, z_s], axis=ax)

    def features_config(self, params: Params, x: Array, config: Any) -> Array:
        """Flattened block features `[B, F]` of one configuration `[L]` bool (may be traced)."""
        config = jnp.asarray(config, dtype=bool)
        h = x
        layer_inputs: dict[int, Array] = {}
        for i, block in enumerate(self.arch.blocks):
            layer_inputs[i] = h
            p_t, p_s = self.block_params(params, i)
            p = jax.tree.map(lambda t, s, c=config[i]: jnp.where(c, t, s), p_t, p_s)
            kwargs = {}
            if i in self._skip_into:
                src = self._skip_into[i]
                kwargs["residual"] = self._pool_skip(layer_inputs[src], src, i)
            h = apply_block(block, p, h, **kwargs)
        return h.reshape(h.shape[0], -1)

    def head(
        self, params: Params, feats: Array, *, train: bool = False, rng: Array | None = None
    ) -> Array:
        """Task head on features `[..., F]` -> logits `[..., K]`; dropout 0.5 when `train`."""
        if train and rng is None:
            raise ValueError("train=True applies dropout and needs an rng.")
        return layers.apply_head(params["task"]["head"], feats, dropout_rng=rng if train else None)

    def apply_all(
        self,
        params: Params,
        x: Array,
        *,
        train: bool = False,
        rng: Array | None = None,
        batch_major: bool = False,
    ) -> Array:
        """Logits `[C, B, K]` of every configuration on inputs `x` `[B, ...]`.

        `batch_major` as in `features_all` (for a batch split over devices).
        """
        features = self.features_all(params, x, batch_major=batch_major)
        return self.head(params, features, train=train, rng=rng)

    def apply_config(
        self,
        params: Params,
        x: Array,
        config: Any,
        *,
        train: bool = False,
        rng: Array | None = None,
    ) -> Array:
        """Logits `[B, K]` of one configuration `[L]` bool on inputs `x` `[B, ...]`."""
        return self.head(params, self.features_config(params, x, config), train=train, rng=rng)

    def regularizer(self, params: Params, transfer_prob: Array) -> Array:
        """The learner's penalty given `[L]` per-block transfer probabilities."""
        return self.learner.regularizer(params["shared"], params["task"]["map"], transfer_prob)


def _conv_prefixes(h: Array, w: Array) -> Array:
    """Convolves `[P, B, H, W, C]` (or `[B, P, ...]`) activations with one kernel."""
    return _map_prefixes(h, lambda t: layers.conv2d(t, w))


def _map_prefixes(h: Array, fn: Any) -> Array:
    """Applies an NHWC function to `[P, B, H, W, C]` (or `[B, P, ...]`), folding both axes."""
    p, b = h.shape[:2]
    out = fn(h.reshape(p * b, *h.shape[2:]))
    return out.reshape(p, b, *out.shape[1:])


def build_model(
    arch: str | BlockNetwork,
    learner: str | Learner,
    num_classes: int,
    *,
    partition: Sequence[Sequence[int]] | None = None,
    width: float = 1.0,
    input_shape: Sequence[int] | None = None,
    fc_hidden: Sequence[int] | None = None,
    learner_hparams: dict[str, Any] | None = None,
) -> Model:
    """Builds the all-configurations model of a task network.

    Args:
      arch: a network (`BlockNetwork`), a registered name (`lasem_jax.ARCHITECTURES` or
        `register_architecture`) or an import path `"package.module:factory"`.
      learner: `hps`, `tf`, `dfcnn`, or a `Learner` (`tf` and `dfcnn` need `ConvBlock`s).
      num_classes: outputs `K`.
      partition: block groups for group-based LASEM (Appendix D); None = one per block.
      width: channel multiplier (for small tests); ignored if `arch` is a `BlockNetwork`.
      input_shape: one input's shape if not the network's default; ignored likewise.
      fc_hidden: FC hidden sizes if not the network's default; ignored likewise.
      learner_hparams: keyword arguments of the learner (e.g. `he_init`, `ortho_weight`).

    Returns:
      A `Model` with `configs`, `init`, `apply_all` and `apply_config`.
    """
    if isinstance(arch, str):
        arch = get_architecture(arch, width=width, input_shape=input_shape, fc_hidden=fc_hidden)
    if isinstance(learner, str):
        learner = get_learner(learner, **(learner_hparams or {}))
    return Model(arch, learner, num_classes, partition)


def count_params(tree: Any) -> int:
    """Total number of scalars in a pytree."""
    return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(tree)))
