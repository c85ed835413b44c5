"""Reads a prepared tfds dataset split into numpy arrays via `tfds.data_source` (no TensorFlow)."""

from __future__ import annotations

import os

import numpy as np
from absl import logging

# Datasets whose preparation needs manually downloaded archives on offline machines.
_ARCHIVES = {
    "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    "stl10": "https://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
}


def default_data_dir() -> str:
    """Returns the directory tfds reads when no `data_dir` is given (`$TFDS_DATA_DIR` or home)."""
    from tensorflow_datasets.core import constants

    return os.path.expanduser(str(constants.DATA_DIR))


def not_prepared_message(name: str, data_dir: str | None, cause: str = "") -> str:
    """Builds the error text for a dataset that tfds cannot serve from `data_dir`.

    Args:
        name: The tfds dataset name, e.g. ``"cifar100"``.
        data_dir: The directory searched, or ``None``/``""`` for the tfds default.
        cause: The first line of the error tfds raised, appended for diagnosis.

    Returns:
        A message naming the dataset, the directory and the commands that prepare it.
    """
    directory = data_dir or default_data_dir()
    archive = _ARCHIVES.get(name, "the dataset's original archives")
    text = (
        f"Dataset {name!r} is not prepared (as array_record) in {directory}. Prepare it once with "
        f"TensorFlow installed (only needed for this step):\n"
        f"  online:  pip install tensorflow-cpu && tfds build {name} --data_dir={directory} "
        f"--file_format=array_record\n"
        f"  offline: download {archive} on another machine, copy it to <dir_with_archives>, then\n"
        f"           tfds build {name} --data_dir={directory} --file_format=array_record "
        f"--manual_dir=<dir_with_archives>\n"
        f"Then pass --config.data.data_dir={directory} (or leave it empty for the tfds default)."
    )
    if cause:
        text += f"\n(tfds said: {cause})"
    return text


def load_split_arrays(
    name: str, split: str, *, data_dir: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Loads one split of a prepared tfds dataset as numpy arrays.

    Reads ``tfds.data_source(name, split=split, data_dir=data_dir, download=False)`` (array_record
    random access; TensorFlow is not needed) example by example.

    Args:
        name: The tfds dataset name (``"cifar100"``, ``"stl10"``, ...); examples must have the
            keys ``image`` and ``label`` (for CIFAR-100, ``label`` is the fine label).
        split: The split, e.g. ``"train"`` or ``"test"``.
        data_dir: The tfds data directory; ``None`` or ``""`` means the tfds default
            (``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).

    Returns:
        ``(images, labels)``: ``uint8 [N, H, W, C]`` and ``int64 [N]``, in the split's order.

    Raises:
        ValueError: If the dataset is not prepared in ``data_dir``; the message names the dataset,
            the directory and the ``tfds build`` command that prepares it.
    """
    import tensorflow_datasets as tfds

    data_dir = data_dir or None
    try:
        source = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
        num_examples = len(source)
    except Exception as exc:  # tfds raises KeyError/NotImplementedError/AssertionError/...
        cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(not_prepared_message(name, data_dir, cause)) from exc
    if num_examples == 0:
        raise ValueError(not_prepared_message(name, data_dir, f"split {split!r} is empty"))
    logging.info(
        "Reading tfds %r split %r (%d examples) from %s.",
        name,
        split,
        num_examples,
        data_dir or default_data_dir(),
    )
    first = source[0]
    images = np.empty((num_examples, *np.shape(first["image"])), dtype=np.uint8)
    labels = np.empty((num_examples,), dtype=np.int64)
    for index in range(num_examples):
        example = first if index == 0 else source[index]
        images[index] = np.asarray(example["image"], dtype=np.uint8)
        labels[index] = int(example["label"])
    return images, labels


__all__ = ["default_data_dir", "load_split_arrays", "not_prepared_message"]
