"""LASEM over a user-defined stack of Flax blocks: prefix sharing, partitions, Eq. 3-4, registry."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lasem_jax
from configs import default
from lasem_jax.core import em
from lasem_jax.data import make_digits_tasks
from lasem_jax.training import trainer

INPUT_SHAPE = (8, 8, 1)
NUM_CLASSES = 4
BATCH = 3
PARTITION = ((0, 2), (1,))  # Non-contiguous groups over blocks.


class ConvResidual(nn.Module):
    """A residual conv block with Flax's own convolution: `[N, H, W, C]` -> same shape."""

    @nn.compact
    def __call__(self, x):
        return x + nn.tanh(nn.Conv(x.shape[-1], (3, 3))(x))


class Lift(nn.Module):
    """1x1 conv to `features` channels, then tanh."""

    features: int

    @nn.compact
    def __call__(self, x):
        return nn.tanh(nn.Conv(self.features, (1, 1))(x))


def tiny_net(*, width=1.0, input_shape=None, fc_hidden=None):
    """A user factory: 3 blocks (lift, two residual conv blocks) on 8x8x1 inputs."""
    channels = max(1, round(4 * width))
    shape = INPUT_SHAPE if input_shape is None else input_shape
    blocks = [Lift(channels), ConvResidual(), ConvResidual()]
    return lasem_jax.BlockNetwork(blocks, shape, fc_hidden or (5,))


def _model(partition=None):
    return lasem_jax.build_model(tiny_net(), "hps", NUM_CLASSES, partition=partition)


def _params(model, seed):
    """Fresh parameters with the biases randomised too, so no path is trivially zero."""
    params = model.init(jax.random.PRNGKey(seed))
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(leaves))
    leaves = [v + 0.1 * jax.random.normal(k, v.shape) for v, k in zip(leaves, keys, strict=True)]
    return jax.tree.unflatten(tree, leaves)


def _data():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((BATCH, *INPUT_SHAPE)), jnp.float32)
    return x, jnp.asarray(rng.integers(0, NUM_CLASSES, BATCH))


@pytest.mark.parametrize("partition", [None, PARTITION])
def test_apply_all_rows_equal_apply_config(partition):
    """Row c of apply_all equals apply_config with configs[c]; configurations differ."""
    model = _model(partition)
    assert model.num_configs == (8 if partition is None else 4)
    params, (x, _) = _params(model, 0), _data()
    logits = jax.jit(model.apply_all)(params, x)
    chex.assert_shape(logits, (model.num_configs, BATCH, NUM_CLASSES))
    one = jax.jit(model.apply_config)
    for c, config in enumerate(model.configs):
        chex.assert_trees_all_close(logits[c], one(params, x, config), atol=1e-5, rtol=1e-5)
    diffs = np.abs(np.asarray(logits)[:, None] - np.asarray(logits)[None]).max(axis=(2, 3))
    np.fill_diagonal(diffs, np.inf)
    assert diffs.min() > 1e-4


def test_partition_configs_follow_groups():
    """With groups {0, 2} and {1}, blocks 0 and 2 always share their choice."""
    configs = _model(PARTITION).configs
    np.testing.assert_array_equal(configs[:, 0], configs[:, 2])
    assert len({tuple(c) for c in configs}) == 4


@pytest.mark.parametrize("partition", [None, PARTITION])
def test_gradients_follow_eq3_eq4(partition):
    """Shared grads sum over c_l = 1, task block grads over c_l = 0, head over all c."""
    model = _model(partition)
    params, (x, y) = _params(model, 1), _data()
    post = jnp.asarray(np.random.default_rng(3).dirichlet(np.ones(model.num_configs)), jnp.float32)

    def objective(p):
        return em.m_step_loss(post, em.per_config_nll(model.apply_all(p, x), y))

    def nll_one(p, config):
        return em.per_config_nll(model.apply_config(p, x, config)[None], y)[0]

    grads = jax.jit(jax.grad(objective))(params)
    per = jax.jit(jax.vmap(jax.grad(nll_one), in_axes=(None, 0)))(params, model.configs)

    def weighted(tree, weights):
        return jax.tree.map(lambda g: jnp.tensordot(weights, g, axes=1), tree)

    def close(a, e):
        scale = float(jnp.max(jnp.abs(e)))
        assert scale > 0
        chex.assert_trees_all_close(a, e, rtol=1e-5, atol=1e-5 * scale)

    for layer in range(model.num_layers):
        name = f"layer_{layer}"
        transfers = jnp.asarray(model.configs[:, layer], jnp.float32)
        jax.tree.map(close, grads["shared"][name], weighted(per["shared"][name], post * transfers))
        specific = weighted(per["task"]["conv"][name], post * (1.0 - transfers))
        jax.tree.map(close, grads["task"]["conv"][name], specific)
    jax.tree.map(close, grads["task"]["head"], weighted(per["task"]["head"], post))


def test_model_hashes_by_value_and_inits_flax_params():
    """Equal networks give equal, hashable models; blocks get Flax's parameter trees."""
    assert _model() == _model() and hash(_model()) == hash(_model())
    params = _model().init(jax.random.PRNGKey(0))
    assert set(params["shared"]["layer_1"]) == {"Conv_0"}
    assert params["task"]["conv"]["layer_0"]["Conv_0"]["kernel"].shape == (1, 1, 1, 4)
    assert params["task"]["head"]["fc_0"]["w"].shape == (8 * 8 * 4, 5)


def test_learners_that_generate_kernels_need_conv_blocks():
    with pytest.raises(ValueError, match="ConvBlock"):
        lasem_jax.build_model(tiny_net(), "tf", NUM_CLASSES)


def test_resolver_errors():
    """Unknown names list the registered ones; bad import paths name the module or attribute."""
    with pytest.raises(ValueError, match="cifar100_4") as info:
        lasem_jax.get_architecture("vgg")
    assert "Unknown architecture 'vgg'" in str(info.value)
    with pytest.raises(ValueError, match=r"cannot import module 'no_such_pkg\.mod'"):
        lasem_jax.get_architecture("no_such_pkg.mod:net")
    with pytest.raises(ValueError, match="has no factory 'missing'"):
        lasem_jax.get_architecture("tests.blocks_test:missing")
    with pytest.raises(ValueError, match="not a BlockNetwork"):
        lasem_jax.get_architecture("tests.blocks_test:_bad")
    with pytest.raises(ValueError, match="already registered"):
        lasem_jax.register_architecture("cifar100_4", tiny_net)


def _bad(**_):
    return "not a network"


def test_example_network_resolves():
    """The README's example factory builds a 3-block network from its import path."""
    net = lasem_jax.get_architecture("examples.blocks:digits_mlp", width=0.25)
    assert net.num_layers == 3 and net.feature_shape == (16,)


def _digits_config(arch):
    config = default.get_config()
    config.model.arch = arch
    config.train.epochs_per_task, config.data.num_tasks = 1, 2
    return config


@pytest.mark.parametrize("arch", ["test_tiny_net", "tests.blocks_test:tiny_net"])
def test_train_lifelong_with_registered_name_and_import_path(arch):
    """`config.model.arch` takes a registered name or an import path."""
    lasem_jax.register_architecture("test_tiny_net", tiny_net)
    tasks = make_digits_tasks(seed=0, num_tasks=2)
    results = trainer.train_lifelong(tasks, _digits_config(arch))
    assert len(results["chosen_configs"]) == 2
    assert all(len(c) == 3 for c in results["chosen_configs"])
    assert results["num_parameters"] > 0
