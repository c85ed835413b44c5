"""The paper's task-network architectures (spec section 3), chosen by name and scalable in width."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence


@dataclasses.dataclass(frozen=True)
class ConvLayer:
    """One conv layer: `kernel`x`kernel` conv to `channels`, ReLU, max-pool `pool` (1 = none).

    `kb` = (h_kb, c_kb) and `ts` = (h_ts, c_ts) are the DF-CNN sizes of spec 2.4 (None where the
    paper defines none).
    """

    kernel: int
    channels: int
    pool: int = 1
    kb: tuple[int, int] | None = None
    ts: tuple[int, int] | None = None


@dataclasses.dataclass(frozen=True)
class Architecture:
    """A task network: conv stack, identity shortcuts, FC hidden sizes and input shape.

    `skips` holds pairs `(i, j)`: the input of layer i (max-pooled by the pools of layers
    i..j-1) is added to the post-ReLU output of layer j, before j's pooling (spec 3).
    """

    name: str
    layers: tuple[ConvLayer, ...]
    fc_hidden: tuple[int, ...]
    input_shape: tuple[int, int, int]
    skips: tuple[tuple[int, int], ...] = ()

    @property
    def num_layers(self) -> int:
        """Number of conv layers `L`."""
        return len(self.layers)

    def in_channels(self, layer: int) -> int:
        """Input channels of conv layer `layer`."""
        return self.input_shape[2] if layer == 0 else self.layers[layer - 1].channels

    @property
    def feature_shape(self) -> tuple[int, int, int]:
        """Shape `(H, W, C)` of the last conv layer's output (SAME pooling rounds up)."""
        h, w, _ = self.input_shape
        for layer in self.layers:
            h, w = math.ceil(h / layer.pool), math.ceil(w / layer.pool)
        return h, w, self.layers[-1].channels

    @property
    def feature_dim(self) -> int:
        """Length `F` of the flattened features fed to the FC head."""
        return math.prod(self.feature_shape)


def _stack(
    kernels: Sequence[int],
    channels: Sequence[int],
    pools: Sequence[int],
    dfcnn: Sequence[tuple[int, int, int, int]] | None = None,
) -> tuple[ConvLayer, ...]:
    sizes = dfcnn or [None] * len(channels)
    return tuple(
        ConvLayer(k, c, p, None if s is None else s[:2], None if s is None else s[2:])
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

_ARCHS: dict[str, Architecture] = {
    "cifar100_4": Architecture(
        "cifar100_4", _stack([3] * 4, [32, 32, 64, 64], [1, 2, 1, 2], _C4), (64,), (32, 32, 3)
    ),
    "cifar100_6": Architecture(
        "cifar100_6",
        _stack([3] * 6, [32, 32, 64, 64, 128, 128], [1, 2, 1, 2, 1, 2], _C6),
        (64,),
        (32, 32, 3),
    ),
    "cifar100_8": Architecture(
        "cifar100_8",
        _stack([3] * 8, [32, 32, 64, 64, 128, 128, 128, 128], [1, 2] * 4, _C6 + [_C6[-1]] * 2),
        (64,),
        (32, 32, 3),
    ),
    "cifar100_resnet18": Architecture(
        "cifar100_resnet18",
        _stack([7] + [3] * 16, _RESNET_CH, _RESNET_POOL),
        (1000,),
        (32, 32, 3),
        ((1, 2), (3, 4), (7, 8), (11, 12), (15, 16)),
    ),
    "office_home_4": Architecture(
        "office_home_4",
        _stack([11, 5, 3, 3], [64, 256, 256, 256], [3, 3, 2, 2], _OH4),
        (256, 64),
        (128, 128, 3),
    ),
    "office_home_6": Architecture(
        "office_home_6",
        _stack([11, 5, 3, 3, 3, 3], [64] + [256] * 5, [3, 3, 1, 2, 1, 2], _OH6),
        (256, 64),
        (128, 128, 3),
    ),
    "office_home_8": Architecture(
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
    "stl10_6": Architecture(
        "stl10_6",
        _stack([3] * 6, [32, 32, 64, 64, 128, 128], [1, 3] * 3, _STL6),
        (128, 16),
        (96, 96, 3),
    ),
    "stl10_9": Architecture(
        "stl10_9",
        _stack([3] * 9, [32, 32, 32, 64, 64, 64, 128, 128, 128], [1, 1, 3] * 3, _STL9),
        (128, 16),
        (96, 96, 3),
    ),
}

ARCHITECTURES = tuple(_ARCHS)


def _scale(n: int, width: float) -> int:
    return max(1, round(n * width))


def get_architecture(
    name: str,
    *,
    width: float = 1.0,
    input_shape: Sequence[int] | None = None,
    fc_hidden: Sequence[int] | None = None,
) -> Architecture:
    """Returns a named architecture, optionally scaled and re-shaped.

    Args:
      name: one of `ARCHITECTURES`.
      width: factor on every channel count, DF-CNN `c_kb`/`c_ts` and FC hidden size (rounded,
        at least 1). Layers of equal width stay equal, so shortcuts stay valid.
      input_shape: `(H, W, C)` of the images, if not the dataset's default.
      fc_hidden: FC hidden sizes, if not the architecture's default (e.g. `(128,)` for TF on
        STL-10 20 tasks, spec 2.3); scaled by `width` too.

    Raises:
      ValueError: unknown name or non-positive width.
    """
    if name not in _ARCHS:
        raise ValueError(
            f"Unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}."
        )
    if width <= 0:
        raise ValueError(f"width must be > 0, got {width}.")
    arch = _ARCHS[name]

    def scale_pair(pair: tuple[int, int] | None) -> tuple[int, int] | None:
        return None if pair is None else (pair[0], _scale(pair[1], width))

    layers = tuple(
        dataclasses.replace(
            layer,
            channels=_scale(layer.channels, width),
            kb=scale_pair(layer.kb),
            ts=scale_pair(layer.ts),
        )
        for layer in arch.layers
    )
    hidden = arch.fc_hidden if fc_hidden is None else tuple(fc_hidden)
    shape = arch.input_shape if input_shape is None else tuple(int(s) for s in input_shape)
    if len(shape) != 3:
        raise ValueError(f"input_shape must be (H, W, C), got {shape}.")
    return dataclasses.replace(
        arch,
        layers=layers,
        fc_hidden=tuple(_scale(h, width) for h in hidden),
        input_shape=shape,
    )
