"""The paper's networks, now Flax `ConvBlock` stacks, keep the parameter counts of before."""

import jax
import pytest

import lasem_jax
from lasem_jax import ConvBlock, count_params

# (arch, learner) -> (shared, task conv, task map, head) scalars at width 0.125 with 10 classes,
# computed with the code before the networks became Flax blocks (commit 96139cc).
COUNTS = {
    ("cifar100_4", "hps"): (1140, 1140, 0, 4194),
    ("cifar100_4", "tf"): (1116, 1140, 361, 4194),
    ("cifar100_4", "dfcnn"): (52, 1140, 1842, 4194),
    ("cifar100_6", "hps"): (4628, 4628, 0, 2146),
    ("cifar100_6", "tf"): (4572, 4628, 1261, 2146),
    ("cifar100_6", "dfcnn"): (120, 4628, 11174, 2146),
    ("cifar100_8", "hps"): (9268, 9268, 0, 610),
    ("cifar100_8", "tf"): (9180, 9268, 2353, 610),
    ("cifar100_8", "dfcnn"): (192, 9268, 23374, 610),
    ("cifar100_resnet18", "hps"): (173312, 173312, 0, 33385),
    ("cifar100_resnet18", "tf"): (172824, 173312, 40435, 33385),
    ("office_home_4", "hps"): (27840, 27840, 0, 16770),
    ("office_home_4", "tf"): (27736, 27840, 5689, 16770),
    ("office_home_4", "dfcnn"): (244, 27840, 40784, 16770),
    ("office_home_6", "hps"): (46336, 46336, 0, 16770),
    ("office_home_6", "tf"): (46168, 46336, 9885, 16770),
    ("office_home_6", "dfcnn"): (324, 46336, 85664, 16770),
    ("office_home_8", "hps"): (21172, 21172, 0, 16770),
    ("office_home_8", "tf"): (21052, 21172, 4913, 16770),
    ("office_home_8", "dfcnn"): (310, 21172, 42357, 16770),
    ("stl10_6", "hps"): (4628, 4628, 0, 4176),
    ("stl10_6", "tf"): (4572, 4628, 1261, 4176),
    ("stl10_6", "dfcnn"): (140, 4628, 14369, 4176),
    ("stl10_9", "hps"): (7680, 7680, 0, 4176),
    ("stl10_9", "tf"): (7596, 7680, 2015, 4176),
    ("stl10_9", "dfcnn"): (224, 7680, 24849, 4176),
}


def _counts(params):
    parts = (params["shared"], *(params["task"][k] for k in ("conv", "map", "head")))
    return tuple(count_params(t) for t in parts)


@pytest.mark.parametrize(("arch", "learner"), sorted(COUNTS))
def test_parameter_counts_unchanged(arch, learner):
    """Shared, task-specific, mapping and head sizes equal the pre-Flax code's."""
    params = lasem_jax.build_model(arch, learner, 10, width=0.125).init(jax.random.PRNGKey(0))
    got = _counts(params)
    assert got == COUNTS[(arch, learner)]


def test_full_width_cifar4_counts_unchanged():
    """cifar100_4 at full width, counts computed with the pre-Flax code (commit 96139cc)."""
    params = lasem_jax.build_model("cifar100_4", "tf", 10).init(jax.random.PRNGKey(0))
    got = _counts(params)
    assert got == (65376, 65568, 16657, 262858)


def test_paper_networks_are_registered_conv_block_stacks():
    """Every paper network resolves through the registry to a stack of Flax ConvBlocks."""
    assert set(lasem_jax.ARCHITECTURES) <= set(lasem_jax.registered_architectures())
    for name in lasem_jax.ARCHITECTURES:
        net = lasem_jax.get_architecture(name, width=0.125)
        assert net.is_conv and all(isinstance(b, ConvBlock) for b in net.blocks)
