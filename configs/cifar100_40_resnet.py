"""CIFAR-100, 40 tasks, the 17-layer ResNet-18 (Table 2): HPS or group-based LASEM.

Arguments as configs/cifar100_10_resnet.py: `static`, `lasem4` .. `lasem7`, optionally `,tiny`.

python -m launch.train --config=configs/cifar100_40_resnet.py:lasem4 --workdir=/tmp/lasem/r40_4g
"""

from configs.cifar100_10_resnet import resnet_config


def get_config(arg: str | None = None):
    """Returns the config of `arg` (default `lasem4`)."""
    return resnet_config("cifar100_40", arg)
