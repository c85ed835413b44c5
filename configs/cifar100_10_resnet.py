"""CIFAR-100, 10 tasks, the 17-layer ResNet-18 (Table 2, Appendix D): HPS or group-based LASEM.

The config argument picks the run: `static` (ResNet HPS, every layer transfers) or `lasem4` ..
`lasem7` (group-based LASEM HPS with the 4-7 group partitions of Table 5 and the `mean`
likelihood of Appendix D); append `,tiny` for a smoke test. 200 epochs per task (Table 4).

python -m launch.train --config=configs/cifar100_10_resnet.py:lasem4 --workdir=/tmp/lasem/r10_4g
python -m launch.train --config=configs/cifar100_10_resnet.py:static --workdir=/tmp/lasem/r10_hps
"""

from configs import paper

# Table 5: contiguous group sizes from the input side (docs/protocol.md §9), by number of groups.
TABLE5_GROUP_SIZES = {
    4: (5, 4, 4, 4),
    5: (5, 4, 4, 2, 2),
    6: (5, 4, 2, 2, 2, 2),
    7: (5, 2, 2, 2, 2, 2, 2),
}
RESNET_EPOCHS_PER_TASK = 200


def contiguous_partition(sizes: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """0-based layer groups of the given sizes, in order: (2, 3) -> ((0, 1), (2, 3, 4))."""
    groups, start = [], 0
    for size in sizes:
        groups.append(tuple(range(start, start + size)))
        start += size
    return tuple(groups)


def resnet_config(scenario: str, arg: str | None):
    """The ResNet-18 config of a CIFAR-100 scenario; `arg` = `<variant>[,tiny]`."""
    variant, _, rest = (arg or "lasem4").partition(",")
    if variant == "tiny":
        variant, rest = "lasem4", "tiny"
    variants = ["static"] + [f"lasem{g}" for g in TABLE5_GROUP_SIZES]
    if variant not in variants or rest not in ("", "tiny"):
        raise ValueError(f"Unknown argument {arg!r}; use one of {variants}, optionally ',tiny'.")
    method = "static" if variant == "static" else "lasem"
    c = paper.get_paper_config(scenario, method, rest or None)
    c.model.arch = "cifar100_resnet18"
    if not rest:
        c.train.epochs_per_task = RESNET_EPOCHS_PER_TASK
    if method == "lasem":
        c.model.partition = contiguous_partition(TABLE5_GROUP_SIZES[int(variant[5:])])
        c.em.likelihood = "mean"
    return c


def get_config(arg: str | None = None):
    """Returns the config of `arg` (default `lasem4`)."""
    return resnet_config("cifar100_10", arg)
