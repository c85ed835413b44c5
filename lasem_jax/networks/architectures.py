"""The paper's task networks (docs/protocol.md §3) and the registry resolving `config.model.arch`.

A name is resolved by `get_architecture`: a registered name (the paper's networks are registered
here, users add theirs with `register_architecture`) or an import path `"package.module:factory"`.
A factory is called as `factory(*, width, input_shape, fc_hidden)` and returns a `BlockNetwork`.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Sequence

from lasem_jax.errors import ImportNotAllowedError
from lasem_jax.networks.blocks import BlockNetwork, ConvBlock

Factory = Callable[..., BlockNetwork]


def _net(
    name: str,
    blocks: tuple[ConvBlock, ...],
    fc_hidden: tuple[int, ...],
    input_shape: tuple[int, int, int],
    skips: tuple[tuple[int, int], ...] = (),
) -> BlockNetwork:
    return BlockNetwork(blocks, input_shape, fc_hidden, skips, name)


def _stack(
    kernels: Sequence[int],
    channels: Sequence[int],
    pools: Sequence[int],
    dfcnn: Sequence[tuple[int, int, int, int]] | None = None,
) -> tuple[ConvBlock, ...]:
    sizes = dfcnn or [None] * len(channels)
    return tuple(
        ConvBlock(k, c, p, None if s is None else s[:2], None if s is None else s[2:])
        for k, c, p, s in zip(kernels, channels, pools, sizes, strict=True)
    )


_C4 = [(2, 16, 3, 24), (2, 24, 3, 48), (2, 32, 3, 64), (2, 36, 3, 72)]
_C6 = [*_C4, (2, 64, 3, 128), (2, 72, 3, 144)]
_STL6 = [(2, 12, 3, 24), (2, 24, 3, 48), (2, 32, 3, 64), (2, 48, 3, 96)]
_STL6 += [(2, 64, 3, 128), (2, 96, 3, 192)]
_STL9 = [(2, 12, 3, 24), (2, 24, 3, 48), (2, 24, 3, 48), (2, 32, 3, 64), (2, 48, 3, 96)]
_STL9 += [(2, 48, 3, 96), (2, 64, 3, 128), (2, 96, 3, 192), (2, 96, 3, 192)]
_OH4 = [(6, 24, 3, 48), (3, 64, 3, 128), (2, 64, 3, 128), (2, 64, 3, 128)]
_OH6 = [(6, 24, 5, 48), (3, 64, 3, 128)] + [(2, 72, 3, 144)] * 4
_OH8 = [(4, 12, 3, 24), (4, 24, 3, 48), (3, 32, 3, 64), (3, 48, 3, 96), (2, 64, 3, 128)]
_OH8 += [(2, 72, 3, 144)] * 3
_RESNET_CH = [64] * 5 + [128] * 4 + [256] * 4 + [512] * 4
_RESNET_POOL = [2, 1, 1, 1, 1, 2, 1, 1, 1, 2, 1, 1, 1, 2, 1, 1, 1]

_PAPER: dict[str, BlockNetwork] = {
    "cifar100_4": _net(
        "cifar100_4", _stack([3] * 4, [32, 32, 64, 64], [1, 2, 1, 2], _C4), (64,), (32, 32, 3)
    ),
    "cifar100_6": _net(
        "cifar100_6",
        _stack([3] * 6, [32, 32, 64, 64, 128, 128], [1, 2, 1, 2, 1, 2], _C6),
        (64,),
        (32, 32, 3),
    ),
    "cifar100_8": _net(
        "cifar100_8",
        _stack([3] * 8, [32, 32, 64, 64, 128, 128, 128, 128], [1, 2] * 4, _C6 + [_C6[-1]] * 2),
        (64,),
        (32, 32, 3),
    ),
    "cifar100_resnet18": _net(
        "cifar100_resnet18",
        _stack([7] + [3] * 16, _RESNET_CH, _RESNET_POOL),
        (1000,),
        (32, 32, 3),
        ((1, 2), (3, 4), (7, 8), (11, 12), (15, 16)),
    ),
    "office_home_4": _net(
        "office_home_4",
        _stack([11, 5, 3, 3], [64, 256, 256, 256], [3, 3, 2, 2], _OH4),
        (256, 64),
        (128, 128, 3),
    ),
    "office_home_6": _net(
        "office_home_6",
        _stack([11, 5, 3, 3, 3, 3], [64] + [256] * 5, [3, 3, 1, 2, 1, 2], _OH6),
        (256, 64),
        (128, 128, 3),
    ),
    "office_home_8": _net(
        "office_home_8",
        _stack(
            [7, 7, 5, 5, 3, 3, 3, 3],
            [32, 32, 64, 64, 128, 128, 256, 256],
            [1, 3, 1, 3, 1, 2, 1, 2],
            _OH8,
        ),
        (256, 64),
        (128, 128, 3),
    ),
    "stl10_6": _net(
        "stl10_6",
        _stack([3] * 6, [32, 32, 64, 64, 128, 128], [1, 3] * 3, _STL6),
        (128, 16),
        (96, 96, 3),
    ),
    "stl10_9": _net(
        "stl10_9",
        _stack([3] * 9, [32, 32, 32, 64, 64, 64, 128, 128, 128], [1, 1, 3] * 3, _STL9),
        (128, 16),
        (96, 96, 3),
    ),
}


ARCHITECTURES = tuple(_PAPER)


def _scale(n: int, width: float) -> int:
    return max(1, round(n * width))


def paper_network(
    name: str,
    *,
    width: float = 1.0,
    input_shape: Sequence[int] | None = None,
    fc_hidden: Sequence[int] | None = None,
) -> BlockNetwork:
    """One of the paper's networks (`ARCHITECTURES`), optionally scaled and re-shaped.

    Args:
      name: one of `ARCHITECTURES`.
      width: factor on every channel count, DF-CNN `c_kb`/`c_ts` and FC hidden size (rounded,
        at least 1). Layers of equal width stay equal, so shortcuts stay valid.
      input_shape: `(H, W, C)` of the images, if not the dataset's default.
      fc_hidden: FC hidden sizes, if not the architecture's default (e.g. `(128,)` for TF on
        STL-10 20 tasks, docs/protocol.md §2.3); scaled by `width` too.

    Raises:
      ValueError: an input shape that is not `(H, W, C)`.
    """
    net = _PAPER[name]

    def scale_pair(pair: tuple[int, int] | None) -> tuple[int, int] | None:
        return None if pair is None else (pair[0], _scale(pair[1], width))

    blocks = tuple(
        block.clone(
            channels=_scale(block.channels, width), kb=scale_pair(block.kb), ts=scale_pair(block.ts)
        )
        for block in net.blocks
    )
    hidden = net.fc_hidden if fc_hidden is None else tuple(fc_hidden)
    shape = net.input_shape if input_shape is None else tuple(int(s) for s in input_shape)
    if len(shape) != 3:
        raise ValueError(f"input_shape must be (H, W, C), got {shape}.")
    hidden = tuple(_scale(h, width) for h in hidden)
    return BlockNetwork(blocks, shape, hidden, net.skips, net.name)


_REGISTRY: dict[str, Factory] = {
    name: functools.partial(paper_network, name) for name in ARCHITECTURES
}
_IMPORTED: set[str] = set()  # import paths this process has resolved (at its user's request)


def require_import_consent(name: str, *, allow_imports: bool, option: str) -> None:
    """Refuses an import-path architecture from a file unless allowed or already imported here.

    A registered name, and an import path that this process already resolved (its own config
    named it), pass; any other `"package.module:factory"` would import a module a file names.

    Args:
      name: `config.model.arch` as read from a file.
      allow_imports: the caller trusts the file's import paths.
      option: how the caller allows imports (named in the error).

    Raises:
      ImportNotAllowedError: an import path that is neither allowed nor imported before.
    """
    if isinstance(name, str) and ":" in name and name not in _IMPORTED and not allow_imports:
        raise ImportNotAllowedError(
            f"The saved config's model.arch={name!r} is an import path: loading it would import "
            f"{name.partition(':')[0]!r} and run its code. If you trust these files, pass "
            f"{option} (or call lasem_jax.get_architecture({name!r}) first)."
        )


def register_architecture(name: str, factory: Factory) -> None:
    """Makes `config.model.arch = name` (and `build_model(name, ...)`) build `factory`'s network.

    Args:
      name: the name; no `:` (that marks an import path).
      factory: called as `factory(*, width, input_shape, fc_hidden)`, returns a `BlockNetwork`;
        `input_shape` (one example's shape) and `fc_hidden` may be None for its defaults.

    Raises:
      ValueError: an empty name, one with `:`, or one already registered to another factory.
      TypeError: `factory` is not callable.
    """
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(f"An architecture name is a non-empty string without ':', got {name!r}.")
    if not callable(factory):
        raise TypeError(f"The factory of architecture {name!r} must be callable, got {factory!r}.")
    if _REGISTRY.get(name, factory) is not factory:
        raise ValueError(f"Architecture {name!r} is already registered to another factory.")
    _REGISTRY[name] = factory


def registered_architectures() -> tuple[str, ...]:
    """The registered names (the paper's first)."""
    return tuple(_REGISTRY)


def resolve_factory(name: str) -> Factory:
    """The factory of a registered name or of an import path `"package.module:factory"`.

    Raises:
      ValueError: an unknown name (the message lists the registered ones), a module that does
        not import or an attribute it lacks (the message names them).
    """
    if not isinstance(name, str) or ":" not in name:
        if name in _REGISTRY:
            return _REGISTRY[name]
        raise ValueError(
            f"Unknown architecture {name!r}; choose one of {', '.join(_REGISTRY)}, register one "
            "with lasem_jax.register_architecture, or give an import path 'package.module:factory'."
        )
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"Architecture {name!r}: cannot import module {module_name!r}: {e}") from e
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ValueError(f"Architecture {name!r}: module {module_name!r} has no factory {attr!r}.")
    _IMPORTED.add(name)
    return factory


def get_architecture(
    name: str,
    *,
    width: float = 1.0,
    input_shape: Sequence[int] | None = None,
    fc_hidden: Sequence[int] | None = None,
) -> BlockNetwork:
    """The network called `name` (registered or `"package.module:factory"`), built by its factory.

    Args:
      name: a registered name (`registered_architectures()`) or an import path.
      width: channel multiplier, passed to the factory.
      input_shape: one example's shape, or None for the network's default.
      fc_hidden: FC hidden sizes, or None for the network's default.

    Raises:
      ValueError: unknown name, bad import path, non-positive width, or a factory that does not
        return a `BlockNetwork`.
    """
    factory = resolve_factory(name)
    if width <= 0:
        raise ValueError(f"width must be > 0, got {width}.")
    shape = None if input_shape is None else tuple(int(s) for s in input_shape)
    hidden = None if fc_hidden is None else tuple(fc_hidden)
    net = factory(width=width, input_shape=shape, fc_hidden=hidden)
    if not isinstance(net, BlockNetwork):
        raise ValueError(
            f"Architecture {name!r}: its factory returned {type(net).__name__}, not a BlockNetwork."
        )
    return net
