"""Tests for lasem_jax.networks.model: all configurations, shapes, init, dropout, counts."""

import functools
import itertools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lasem_jax import build_model
from lasem_jax.core.search_space import enumerate_configs
from lasem_jax.networks import layers
from tests.param_utils import random_params

WIDTH = 0.125
BATCH = 3
STL9_PARTITION = [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
RESNET_PARTITION = [list(range(0, 5)), list(range(5, 9)), list(range(9, 13)), list(range(13, 17))]
# Non-contiguous groups whose shortcut ends (1-2, 3-4, 7-8, ...) fall in different groups.
RESNET_SCATTERED = [[16, 0, 3], [1, 5, 9, 13], [2, 4, 6, 7, 8, 10, 11, 12, 14, 15]]

# name -> (arch, learner, num_classes, partition, input_shape)
CASES = {
    "cifar4_hps": ("cifar100_4", "hps", 5, None, (8, 8, 3)),
    "cifar4_tf": ("cifar100_4", "tf", 5, None, (8, 8, 3)),
    "cifar4_dfcnn": ("cifar100_4", "dfcnn", 5, None, (8, 8, 3)),
    "stl9_hps": ("stl10_9", "hps", 3, STL9_PARTITION, (9, 9, 3)),
    "stl9_tf": ("stl10_9", "tf", 3, STL9_PARTITION, (9, 9, 3)),
    "stl9_dfcnn": ("stl10_9", "dfcnn", 3, STL9_PARTITION, (9, 9, 3)),
    "resnet18_hps": ("cifar100_resnet18", "hps", 4, RESNET_PARTITION, (8, 8, 3)),
    "resnet18_tf_scattered": ("cifar100_resnet18", "tf", 4, RESNET_SCATTERED, (8, 8, 3)),
}


class _Setup:
    """A tiny model, its parameters, a batch and its compiled functions (built once)."""

    def __init__(self, name):
        arch, learner, num_classes, partition, input_shape = CASES[name]
        self.partition = partition
        self.model = build_model(
            arch, learner, num_classes, partition=partition, width=WIDTH, input_shape=input_shape
        )
        self.num_classes = num_classes
        self.params = random_params(self.model, 0)
        x = np.random.default_rng(1).standard_normal((BATCH, *input_shape))
        self.x = jnp.asarray(x, jnp.float32)
        self.apply_all = jax.jit(self.model.apply_all, static_argnames="train")
        self.apply_config = jax.jit(self.model.apply_config, static_argnames="train")
        self._all = None

    def logits_all(self):
        if self._all is None:
            self._all = self.apply_all(self.params, self.x)
        return self._all


_CACHE = {}


def _setup(name):
    if name not in _CACHE:
        _CACHE[name] = _Setup(name)
    return _CACHE[name]


@pytest.fixture(scope="module", params=sorted(CASES))
def setup(request):
    return _setup(request.param)


def test_apply_all_matches_apply_config(setup):
    """Row c of apply_all equals apply_config with configs[c], for every configuration."""
    model = setup.model
    logits = setup.logits_all()
    for c, config in enumerate(model.configs):
        one = setup.apply_config(setup.params, setup.x, jnp.asarray(config))
        chex.assert_trees_all_close(logits[c], one, atol=1e-5, rtol=1e-5)


def test_configs_differ(setup):
    """Different configurations produce different logits (the check above is not vacuous)."""
    logits = np.asarray(setup.logits_all())
    diffs = np.abs(logits[:, None] - logits[None]).max(axis=(2, 3))
    np.fill_diagonal(diffs, np.inf)
    assert diffs.min() > 1e-4, diffs.min()


def test_output_shapes_and_configs(setup):
    """apply_all gives [C, B, K], apply_config [B, K]; configs follow the partition."""
    model, k = setup.model, setup.num_classes
    expected = enumerate_configs(model.num_layers, setup.partition)
    np.testing.assert_array_equal(model.configs, expected)
    assert model.num_configs == expected.shape[0]
    logits = setup.logits_all()
    chex.assert_shape(logits, (model.num_configs, BATCH, k))
    chex.assert_tree_all_finite(logits)
    one = setup.apply_config(setup.params, setup.x, jnp.asarray(model.configs[0]))
    chex.assert_shape(one, (BATCH, k))


def test_init_structure(setup):
    """Model.init returns shared and task subtrees with one entry per layer, of the right shapes."""
    model = setup.model
    params = model.init(jax.random.PRNGKey(0))
    assert isinstance(params, dict)
    assert set(params) == {"shared", "task"}
    assert set(params["task"]) == {"conv", "map", "head"}
    names = {f"layer_{i}" for i in range(model.num_layers)}
    assert set(params["shared"]) == names
    assert set(params["task"]["conv"]) == names
    assert set(params["task"]["map"]) == names
    for i, layer in enumerate(model.arch.layers):
        conv = params["task"]["conv"][f"layer_{i}"]
        c_in = model.arch.in_channels(i)
        assert conv["w"].shape == (layer.kernel, layer.kernel, c_in, layer.channels)
        assert conv["b"].shape == (layer.channels,)
        assert conv["w"].dtype == jnp.float32
        # The transfer path yields a kernel of the same shape as the plain conv.
        w_t, b_t = jax.eval_shape(
            functools.partial(model.learner.transfer_kernel, layer=layer),
            params["shared"][f"layer_{i}"],
            params["task"]["map"][f"layer_{i}"],
        )
        assert w_t.shape == conv["w"].shape
        assert b_t.shape == conv["b"].shape
    assert params["task"]["head"]["out"]["w"].shape[-1] == setup.num_classes
    assert params["task"]["head"]["fc_0"]["w"].shape[0] == model.arch.feature_dim


def test_dropout_needs_rng_and_changes_output():
    """train=True needs an rng; with one, the logits differ from the no-dropout ones."""
    s = _setup("cifar4_hps")
    with pytest.raises(ValueError, match="rng"):
        s.apply_all(s.params, s.x, train=True)
    with pytest.raises(ValueError, match="rng"):
        s.apply_config(s.params, s.x, jnp.asarray(s.model.configs[0]), train=True)
    train = s.apply_all(s.params, s.x, train=True, rng=jax.random.PRNGKey(3))
    chex.assert_shape(train, (s.model.num_configs, BATCH, s.num_classes))
    chex.assert_tree_all_finite(train)
    assert np.abs(np.asarray(train) - np.asarray(s.logits_all())).max() > 1e-4
    again = s.apply_all(s.params, s.x, train=True, rng=jax.random.PRNGKey(3))
    chex.assert_trees_all_close(train, again)


def test_dfcnn_on_resnet18_raises():
    """DF-CNN has no sizes for the 17-layer ResNet: ValueError."""
    with pytest.raises(ValueError, match="DF-CNN sizes"):
        build_model("cifar100_resnet18", "dfcnn", 10, width=WIDTH, input_shape=(8, 8, 3))


def test_unknown_names_raise():
    """Unknown learner or architecture names raise ValueError naming them."""
    with pytest.raises(ValueError, match="Unknown learner 'foo'"):
        build_model("cifar100_4", "foo", 10)
    with pytest.raises(ValueError, match="Unknown architecture 'cifar100_5'"):
        build_model("cifar100_5", "hps", 10)
    with pytest.raises(ValueError, match="num_classes"):
        build_model("cifar100_4", "hps", 0, width=WIDTH)


# ---------------------------------------------------------------------------------------------
# Parameter counts at full width, from docs/protocol.md §2 and §3, shapes only.

# arch -> (kernels, channels, input channels, feature dim, fc hidden, DF-CNN sizes or None)
SPEC = {
    "cifar100_4": (
        [3] * 4,
        [32, 32, 64, 64],
        3,
        8 * 8 * 64,
        [64],
        [(2, 16, 3, 24), (2, 24, 3, 48), (2, 32, 3, 64), (2, 36, 3, 72)],
    ),
    "office_home_4": (
        [11, 5, 3, 3],
        [64, 256, 256, 256],
        3,
        4 * 4 * 256,
        [256, 64],
        [(6, 24, 3, 48), (3, 64, 3, 128), (2, 64, 3, 128), (2, 64, 3, 128)],
    ),
    "stl10_9": (
        [3] * 9,
        [32, 32, 32, 64, 64, 64, 128, 128, 128],
        3,
        4 * 4 * 128,
        [128, 16],
        [
            *[(2, 12, 3, 24), (2, 24, 3, 48), (2, 24, 3, 48), (2, 32, 3, 64), (2, 48, 3, 96)],
            *[(2, 48, 3, 96), (2, 64, 3, 128), (2, 96, 3, 192), (2, 96, 3, 192)],
        ],
    ),
    "cifar100_resnet18": (
        [7] + [3] * 16,
        [64] * 5 + [128] * 4 + [256] * 4 + [512] * 4,
        3,
        2 * 2 * 512,
        [1000],
        None,
    ),
}


def _expected_counts(arch, learner, num_classes):
    kernels, channels, c0, feat, hidden, dfcnn = SPEC[arch]
    cins = [c0, *channels[:-1]]
    conv = sum(k * k * ci * co + co for k, ci, co in zip(kernels, cins, channels, strict=True))
    sizes = [feat, *hidden, num_classes]
    head = sum(a * b + b for a, b in itertools.pairwise(sizes))
    if learner == "hps":
        shared, maps = conv, 0
    elif learner == "tf":
        shared = sum(k * k * ci * co for k, ci, co in zip(kernels, cins, channels, strict=True))
        maps = sum(
            k * k + k * k + ci * ci + co * co + co
            for k, ci, co in zip(kernels, cins, channels, strict=True)
        )
    else:
        shared = sum(h_kb * h_kb * c_kb for h_kb, c_kb, _, _ in dfcnn)
        maps = sum(
            h_ts * h_ts * c_ts * c_kb + c_ts + c_ts * ci * co + co
            for (_, c_kb, h_ts, c_ts), ci, co in zip(dfcnn, cins, channels, strict=True)
        )
    return {"shared": shared, "conv": conv, "map": maps, "head": head}


def _count(tree):
    return sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(tree))


@pytest.mark.parametrize(
    ("arch", "learner", "num_classes"),
    [
        ("cifar100_4", "hps", 10),
        ("cifar100_4", "tf", 10),
        ("cifar100_4", "dfcnn", 10),
        ("office_home_4", "dfcnn", 13),
        ("office_home_4", "tf", 13),
        ("stl10_9", "dfcnn", 3),
        ("cifar100_resnet18", "hps", 10),
        ("cifar100_resnet18", "tf", 10),
    ],
)
def test_param_counts_full_width(arch, learner, num_classes):
    """Shared, task conv, mapping and head sizes at full width match docs/protocol.md §2."""
    model = build_model(arch, learner, num_classes)
    shapes = model.init(jax.random.PRNGKey(0))
    got = {
        "shared": _count(shapes["shared"]),
        "conv": _count(shapes["task"]["conv"]),
        "map": _count(shapes["task"]["map"]),
        "head": _count(shapes["task"]["head"]),
    }
    assert got == _expected_counts(arch, learner, num_classes)


def test_param_counts_cifar4_hand_numbers():
    """cifar100_4 HPS at full width, from docs/protocol.md §2 and §3 by hand."""
    model = build_model("cifar100_4", "hps", 10)
    shapes = model.init(jax.random.PRNGKey(0))
    conv = (9 * 3 * 32 + 32) + (9 * 32 * 32 + 32) + (9 * 32 * 64 + 64) + (9 * 64 * 64 + 64)
    assert conv == 65568
    assert _count(shapes["shared"]) == conv
    assert _count(shapes["task"]["conv"]) == conv
    assert _count(shapes["task"]["head"]) == 4096 * 64 + 64 + 64 * 10 + 10


# ---------------------------------------------------------------------------------------------
# Layers.


@pytest.mark.parametrize("kernel", [1, 2, 3, 5])
def test_conv2d_cpu_equals_xla_with_gradients(kernel):
    """The CPU convolution and its hand-written gradients equal XLA's and JAX's (SAME)."""
    rng = np.random.default_rng(kernel)
    x = jnp.asarray(rng.standard_normal((2, 9, 10, 3)), jnp.float32)
    w = jnp.asarray(0.1 * rng.standard_normal((kernel, kernel, 3, 4)), jnp.float32)
    weights = jnp.asarray(rng.standard_normal((2, 9, 10, 4)), jnp.float32)

    def loss(impl):
        return lambda x, w: jnp.sum(weights * layers.conv2d(x, w, impl=impl))

    a = layers.conv2d(x, w, impl="cpu")
    chex.assert_shape(a, (2, 9, 10, 4))
    chex.assert_trees_all_close(a, layers.conv2d(x, w, impl="xla"), atol=1e-5, rtol=1e-5)
    got = jax.grad(loss("cpu"), (0, 1))(x, w)
    want = jax.grad(loss("xla"), (0, 1))(x, w)
    chex.assert_trees_all_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(("hw", "size"), [((8, 8), 2), ((5, 7), 2), ((7, 6), 3), ((4, 4), 1)])
def test_max_pool_equals_reduce_window(hw, size):
    """The reshape max pool equals TF's SAME reduce-window pool, values and gradients."""
    x = jax.random.normal(jax.random.PRNGKey(size), (2, *hw, 3))

    def reference(t):
        window = (1, size, size, 1)
        return jax.lax.reduce_window(t, -jnp.inf, jax.lax.max, window, window, "SAME")

    chex.assert_trees_all_equal(layers.max_pool(x, size), reference(x))
    got = jax.grad(lambda t: jnp.sum(layers.max_pool(t, size) ** 2))(x)
    chex.assert_trees_all_equal(got, jax.grad(lambda t: jnp.sum(reference(t) ** 2))(x))


def test_conv2d_unknown_impl():
    """An unknown conv impl raises ValueError."""
    with pytest.raises(ValueError, match="'fft'"):
        layers.conv2d(jnp.zeros((1, 4, 4, 1)), jnp.zeros((3, 3, 1, 1)), impl="fft")


def _np_conv_transpose_same(x, w, out_hw, stride):
    """Reference TF1 conv2d_transpose(SAME): scatter each input pixel through the filter."""
    n, h_in, _, _ = x.shape
    h, _, c_out, _ = w.shape
    pad_total = max((h_in - 1) * stride + h - out_hw, 0)
    top = pad_total // 2
    y = np.zeros((n, out_hw, out_hw, c_out))
    for i in range(h_in):
        for j in range(h_in):
            for a in range(h):
                for b in range(h):
                    r, c = i * stride + a - top, j * stride + b - top
                    if 0 <= r < out_hw and 0 <= c < out_hw:
                        y[:, r, c, :] += x[:, i, j, :] @ w[a, b].T
    return y


@pytest.mark.parametrize(("h_kb", "k", "h_ts"), [(2, 3, 3), (6, 11, 3), (4, 7, 3), (6, 11, 5)])
def test_conv2d_transpose_same(h_kb, k, h_ts):
    """conv2d_transpose_same gives [1, k, k, c_ts] and matches a scatter-add reference."""
    c_kb, c_ts = 3, 5
    rng = np.random.default_rng(k)
    x = jnp.asarray(rng.standard_normal((1, h_kb, h_kb, c_kb)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((h_ts, h_ts, c_ts, c_kb)), jnp.float32)
    out = layers.conv2d_transpose_same(x, w, k)
    chex.assert_shape(out, (1, k, k, c_ts))
    expected = _np_conv_transpose_same(np.asarray(x), np.asarray(w), k, 2)
    chex.assert_trees_all_close(out, expected.astype(np.float32), atol=1e-4, rtol=1e-5)


def test_batch_major_prefixes_give_the_same_features(setup):
    """`features_all(batch_major=True)` (data parallel's layout) equals the prefix-major one."""
    model = setup.model
    major = jax.jit(functools.partial(model.features_all, batch_major=True))
    np.testing.assert_allclose(
        major(setup.params, setup.x), model.features_all(setup.params, setup.x), atol=1e-5
    )
