"""Tests for lasem_jax.core.search_space: enumeration, partitions, named configs."""

import itertools

import numpy as np
import pytest

from lasem_jax.core.search_space import (
    config_index,
    config_to_string,
    enumerate_configs,
    named_config,
    validate_partition,
)


def _bits(s):
    """'TFFT' -> bool array."""
    return np.array([c == "T" for c in s])


@pytest.mark.parametrize(
    ("num_layers", "partition", "expected_rows"),
    [
        (1, None, 2),
        (4, None, 16),
        (9, None, 512),
        (9, [[0, 1, 2], [3, 4, 5], [6, 7, 8]], 8),
        (4, [[0, 2], [1, 3]], 4),
        (17, [[0, 1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16]], 16),
    ],
)
def test_enumerate_configs_count_shape_dtype_unique(num_layers, partition, expected_rows):
    """There are 2^groups unique bool rows of length L, all-transfer first, none-transfer last."""
    configs = enumerate_configs(num_layers, partition)
    assert configs.dtype == np.bool_
    assert configs.shape == (expected_rows, num_layers)
    assert len({tuple(row) for row in configs}) == expected_rows
    assert configs[0].all()
    assert not configs[-1].any()


def test_enumerate_configs_reference_order_four_layers():
    """Row i transfers layer l iff bit l of i is 0 (docs/protocol.md §1.1), layer 0 first."""
    expected = [
        "TTTT", "FTTT", "TFTT", "FFTT", "TTFT", "FTFT", "TFFT", "FFFT",
        "TTTF", "FTTF", "TFTF", "FFTF", "TTFF", "FTFF", "TFFF", "FFFF",
    ]  # fmt: skip
    configs = enumerate_configs(4)
    np.testing.assert_array_equal(configs, np.stack([_bits(s) for s in expected]))


def test_enumerate_configs_bit_rule_six_layers():
    """For 6 layers, row i layer l is True exactly when bit l of i is 0."""
    configs = enumerate_configs(6)
    i = np.arange(64)[:, None]
    np.testing.assert_array_equal(configs, ((i >> np.arange(6)) & 1) == 0)


@pytest.mark.parametrize(
    ("num_layers", "partition"),
    [
        (9, [[0, 1, 2], [3, 4, 5], [6, 7, 8]]),
        (4, [[0, 2], [1, 3]]),
        (5, [[4], [0, 3], [1, 2]]),
    ],
)
def test_enumerate_configs_constant_within_groups(num_layers, partition):
    """Every row is constant within each partition group, and groups vary independently."""
    configs = enumerate_configs(num_layers, partition)
    for group in partition:
        block = configs[:, group]
        assert (block == block[:, :1]).all(), group
    group_bits = np.stack([configs[:, g[0]] for g in partition], axis=1)
    assert len({tuple(r) for r in group_bits}) == 2 ** len(partition)


def test_enumerate_configs_interleaved_order():
    """Partition [[0,2],[1,3]]: group g transfers iff bit g of the row index is 0."""
    configs = enumerate_configs(4, [[0, 2], [1, 3]])
    expected = np.stack([_bits(s) for s in ["TTTT", "FTFT", "TFTF", "FFFF"]])
    np.testing.assert_array_equal(configs, expected)


def test_enumerate_configs_adjacent_groups_order():
    """Partition of 9 layers in 3 blocks: row 1 has only the first block task-specific."""
    configs = enumerate_configs(9, [[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    np.testing.assert_array_equal(configs[1], _bits("FFFTTTTTT"))
    np.testing.assert_array_equal(configs[2], _bits("TTTFFFTTT"))
    np.testing.assert_array_equal(configs[4], _bits("TTTTTTFFF"))


def test_enumerate_configs_none_partition_equals_singletons():
    """partition=None is the same as one group per layer."""
    np.testing.assert_array_equal(
        enumerate_configs(5), enumerate_configs(5, [[i] for i in range(5)])
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("all", "TTTT"),
        ("none", "FFFF"),
        ("top1", "FFFT"),
        ("top2", "FFTT"),
        ("top3", "FTTT"),
        ("top4", "TTTT"),
        ("bottom1", "TFFF"),
        ("bottom2", "TTFF"),
        ("bottom3", "TTTF"),
        ("alternating", "FTFT"),
        ("alternating_even", "TFTF"),
        ("0101", "FTFT"),
        ("1100", "TTFF"),
    ],
)
def test_named_config_four_layers(name, expected):
    """Named configurations of a 4-layer network match the paper / docs/protocol.md §1.10."""
    config = named_config(name, 4)
    assert config.dtype == np.bool_
    np.testing.assert_array_equal(config, _bits(expected))


def test_named_config_other_depths():
    """top/bottom/alternating scale with the number of layers."""
    np.testing.assert_array_equal(named_config("top2", 6), _bits("FFFFTT"))
    np.testing.assert_array_equal(named_config("bottom3", 9), _bits("TTTFFFFFF"))
    np.testing.assert_array_equal(named_config("alternating", 5), _bits("FTFTF"))
    np.testing.assert_array_equal(named_config("none", 1), _bits("F"))


@pytest.mark.parametrize(
    ("name", "num_layers", "match"),
    [
        ("bogus", 4, r"Unknown configuration name 'bogus'"),
        ("", 4, r"Unknown configuration name"),
        ("0121", 4, r"Unknown configuration name '0121'"),
        ("top0", 4, r"'top0'.*k=0 is out of range for 4 layers"),
        ("top5", 4, r"'top5'.*k=5 is out of range for 4 layers"),
        ("bottom9", 4, r"'bottom9'.*k=9 is out of range for 4 layers"),
        ("010", 4, r"'010' has 3 bits but the network has 4 layers"),
        ("01010", 4, r"has 5 bits but the network has 4 layers"),
    ],
)
def test_named_config_errors(name, num_layers, match):
    """Bad names raise ValueError naming the problem."""
    with pytest.raises(ValueError, match=match):
        named_config(name, num_layers)


@pytest.mark.parametrize(
    ("partition", "match"),
    [
        ([[0, 1], [1, 2], [3]], r"overlap at layer 1"),
        ([[0, 1], [3]], r"does not cover layers \[2\]"),
        ([[0, 1], [2, 3], [9]], r"names layer 9.*layers 0\.\.3"),
        ([[0, 1], [-1, 2, 3]], r"names layer -1"),
        ([[0, 1], [], [2, 3]], r"group 1 is empty"),
    ],
)
def test_bad_partition_errors(partition, match):
    """Invalid partitions raise ValueError in validation and enumeration alike."""
    with pytest.raises(ValueError, match=match):
        validate_partition(4, partition)
    with pytest.raises(ValueError, match=match):
        enumerate_configs(4, partition)


def test_validate_partition_sorts_groups_and_keeps_order():
    """Groups come back sorted internally, in the order given."""
    assert validate_partition(4, [[3, 1], [2, 0]]) == [[1, 3], [0, 2]]
    assert validate_partition(3, None) == [[0], [1], [2]]


def test_config_index_round_trip():
    """config_index finds every row, agrees with named configs, and rejects missing ones."""
    configs = enumerate_configs(4)
    for i, row in enumerate(configs):
        assert config_index(configs, row) == i
    assert config_index(configs, named_config("top1", 4)) == 7
    assert config_index(configs, named_config("bottom1", 4)) == 14
    assert config_index(configs, named_config("alternating", 4)) == 5
    assert config_index(configs, [True, True, True, True]) == 0
    grouped = enumerate_configs(4, [[0, 1], [2, 3]])
    assert config_index(grouped, _bits("FFTT")) == 1
    with pytest.raises(ValueError, match=r"1000 is not in the search space"):
        config_index(grouped, _bits("TFFF"))


def test_config_to_string():
    """Bit strings are input side first, 1 = transfer, and round-trip through named_config."""
    assert config_to_string(_bits("TFFT")) == "1001"
    for row in enumerate_configs(4):
        np.testing.assert_array_equal(named_config(config_to_string(row), 4), row)


@pytest.mark.parametrize(
    ("num_layers", "blocks"),
    [(9, [3, 3, 3]), (4, [1, 1, 1, 1]), (17, [5, 4, 4, 2, 2]), (6, [2, 1, 3])],
)
def test_partition_order_is_filtered_full_enumeration(num_layers, blocks):
    """Spec 9: group configs are the 2^L rows constant within blocks, in the original order."""
    starts = np.cumsum([0, *blocks])
    partition = [list(range(a, b)) for a, b in itertools.pairwise(starts)]
    full = enumerate_configs(num_layers)
    keep = np.ones(len(full), dtype=bool)
    for group in partition:
        keep &= (full[:, group] == full[:, group[:1]]).all(axis=1)
    np.testing.assert_array_equal(enumerate_configs(num_layers, partition), full[keep])


def test_stl10_groups_match_spec_listing():
    """9 layers in blocks [3,3,3]: the 8 configurations, in the order of docs/protocol.md §9."""
    expected = ["TTT TTT TTT", "FFF TTT TTT", "TTT FFF TTT", "FFF FFF TTT",
                "TTT TTT FFF", "FFF TTT FFF", "TTT FFF FFF", "FFF FFF FFF"]  # fmt: skip
    configs = enumerate_configs(9, [[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    np.testing.assert_array_equal(configs, np.stack([_bits(s.replace(" ", "")) for s in expected]))


def test_config_index_wrong_length_and_leading_zero_names():
    """A configuration of the wrong length and `top04` are rejected with clear messages."""
    with pytest.raises(ValueError, match="3 entries but the network has 4 layers"):
        config_index(enumerate_configs(4), [True, True, True])
    with pytest.raises(ValueError, match="top04"):
        named_config("top04", 4)
