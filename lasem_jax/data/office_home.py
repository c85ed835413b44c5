"""Office-Home lifelong scenario (docs/protocol.md §5.2) read from a manually downloaded folder.

Office-Home's terms forbid redistribution, so there is no download: extract the dataset from
https://www.hemanthdv.org/officeHomeDataset.html and pass the folder that holds
``{Art,Clipart,Product,Real World}/<Class>/*.jpg`` as ``--config.data.manual_dir=...``.

Ten tasks: tasks 0-4 are the Product domain x the five fixed 13-class groups
(``OFFICEHOME_TASK_LABELS``, indices into the alphabetical ``OFFICEHOME_CLASS_LABELS``), tasks 5-9
the Real World domain x the same groups. Labels are positions within the group (0..12). Images are
decoded with Pillow, resized to 128x128 with a Lanczos (anti-aliasing) filter and scaled to
``[0, 1]`` (the reference uses ``skimage.transform.resize(anti_aliasing=True)``; no mean
subtraction or augmentation). Each class is shuffled with a generator seeded by
``(seed, domain, class)`` and split into ``int(0.6 n)`` train, ``int(0.1 n)`` validation and the
remaining ``n - int(0.6 n) - int(0.1 n)`` test images (the reference takes ``int(0.3 n)``, which
may drop one image). Decoded classes are cached as uint8 ``.npz`` files in
``data_config.cache_dir`` (default ``<manual_dir>/.lasem_cache``), one per domain and class.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from absl import logging

from lasem_jax.task import Task

OFFICEHOME_CLASS_LABELS: tuple[str, ...] = (
    "Alarm_Clock", "Backpack", "Batteries", "Bed", "Bike", "Bottle", "Bucket", "Calculator",
    "Calendar", "Candles", "Chair", "Clipboards", "Computer", "Couch", "Curtains", "Desk_Lamp",
    "Drill", "Eraser", "Exit_Sign", "Fan", "File_Cabinet", "Flipflops", "Flowers", "Folder",
    "Fork", "Glasses", "Hammer", "Helmet", "Kettle", "Keyboard", "Knives", "Lamp_Shade", "Laptop",
    "Marker", "Monitor", "Mop", "Mouse", "Mug", "Notebook", "Oven", "Pan", "Paper_Clip", "Pen",
    "Pencil", "Postit_Notes", "Printer", "Push_Pin", "Radio", "Refrigerator", "Ruler", "Scissors",
    "Screwdriver", "Shelf", "Sink", "Sneakers", "Soda", "Speaker", "Spoon", "Table", "Telephone",
    "ToothBrush", "Toys", "Trash_Can", "TV", "Webcam",
)  # fmt: skip
OFFICEHOME_TASK_LABELS: tuple[tuple[int, ...], ...] = (
    (63, 54, 55, 59, 47, 8, 5, 56, 18, 50, 3, 57, 13),
    (62, 19, 21, 35, 64, 46, 27, 10, 39, 17, 22, 34, 30),
    (48, 15, 51, 6, 40, 31, 4, 36, 45, 41, 16, 14, 11),
    (9, 29, 1, 44, 33, 26, 25, 32, 53, 12, 43, 38, 60),
    (28, 2, 49, 37, 20, 23, 58, 24, 52, 61, 7, 0, 42),
)
# Domain name -> accepted folder names (the archive uses "Real World"; some copies drop the space).
DOMAINS: dict[str, tuple[str, ...]] = {
    "Product": ("Product",),
    "Real World": ("Real World", "Real_World", "RealWorld"),
}
IMAGE_SIZE = 128
_SPLIT_FRACTIONS = (0.6, 0.1)
_EXTENSIONS = (".jpg", ".jpeg", ".png")
_FIX = (
    "download Office-Home from https://www.hemanthdv.org/officeHomeDataset.html, extract it and "
    "pass the extracted folder (holding 'Product' and 'Real World') with "
    "--config.data.manual_dir=/path/to/OfficeHomeDataset"
)


def _error(message: str) -> ValueError:
    return ValueError(f"office_home: {message}; {_FIX}.")


def _decode_image(path: str) -> np.ndarray:
    """Decodes one image file to ``[128, 128, 3]`` uint8 (RGB, Lanczos-resized)."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS)
        return np.asarray(image, dtype=np.uint8)


def _domain_dir(manual_dir: str, domain: str) -> str:
    for folder in DOMAINS[domain]:
        path = os.path.join(manual_dir, folder)
        if os.path.isdir(path):
            return path
    raise _error(f"domain folder {domain!r} not found in {manual_dir!r}")


def _load_class(domain_dir: str, domain: str, name: str, cache_dir: str) -> np.ndarray:
    """Returns all images of one class, ``[n, 128, 128, 3]`` uint8, decoding at most once."""
    class_dir = os.path.join(domain_dir, name)
    if not os.path.isdir(class_dir):
        raise _error(f"class folder {name!r} not found in {domain_dir!r}")
    files = sorted(f for f in os.listdir(class_dir) if f.lower().endswith(_EXTENSIONS))
    if not files:
        raise _error(f"no images (*.jpg, *.jpeg, *.png) in {class_dir!r}")
    cache_path = os.path.join(cache_dir, f"{domain.replace(' ', '_')}__{name}_{IMAGE_SIZE}.npz")
    if os.path.exists(cache_path):
        with np.load(cache_path) as cached:
            if [str(f) for f in cached["files"]] == files:
                return cached["images"]
    images = np.stack([_decode_image(os.path.join(class_dir, f)) for f in files])
    try:
        os.makedirs(cache_dir, exist_ok=True)
        tmp_path = cache_path + ".tmp.npz"
        np.savez(tmp_path, images=images, files=np.asarray(files))
        os.replace(tmp_path, cache_path)
    except OSError:  # read-only dataset folder: set data.cache_dir to a writable one to cache
        pass
    return images


def _split_indices(n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    order = rng.permutation(n)
    n_train, n_val = int(_SPLIT_FRACTIONS[0] * n), int(_SPLIT_FRACTIONS[1] * n)
    return order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]


def make_office_home_tasks(data_config: Any, *, seed: int) -> list[Task]:
    """Builds the 10 Office-Home tasks (design in the module docstring).

    Args:
        data_config: The ``config.data`` section: ``manual_dir`` (required), optional
            ``cache_dir`` (default ``<manual_dir>/.lasem_cache``), ``num_tasks`` (1..10, the
            first tasks are kept; default 10) and ``classes_per_task`` (must be 13 if set).
        seed: Seed of the per-class train/validation/test shuffles.

    Returns:
        Up to 10 tasks with images ``[N, 128, 128, 3]`` float32 in ``[0, 1]`` and labels int32 in
        ``0..12`` (``num_classes == 13``); split sizes differ between tasks.

    Raises:
        ValueError: If ``manual_dir`` is unset, missing or empty, or a domain folder, a class
            folder or a class's images are missing (the message names the path and the fix), or
            ``num_tasks``/``classes_per_task`` are out of range.
    """
    num_tasks = int(data_config.get("num_tasks", 10))
    max_tasks = len(DOMAINS) * len(OFFICEHOME_TASK_LABELS)
    if not 1 <= num_tasks <= max_tasks:
        raise ValueError(f"office_home: num_tasks must be in 1..{max_tasks}, got {num_tasks}.")
    classes_per_task = int(data_config.get("classes_per_task", 13))
    if classes_per_task != len(OFFICEHOME_TASK_LABELS[0]):
        raise ValueError(
            f"office_home: classes_per_task must be 13 (the fixed class groups), got "
            f"{classes_per_task}; set --config.data.classes_per_task=13."
        )
    manual_dir = str(data_config.get("manual_dir", "") or "")
    if not manual_dir:
        raise _error("data.manual_dir is not set")
    if not os.path.isdir(manual_dir) or not os.listdir(manual_dir):
        raise _error(f"manual_dir {manual_dir!r} does not exist or is empty")
    cache_dir = str(data_config.get("cache_dir", "") or os.path.join(manual_dir, ".lasem_cache"))
    logging.info("Office-Home: reading %s (decoded-image cache: %s).", manual_dir, cache_dir)

    tasks = []
    for domain_index, domain in enumerate(DOMAINS):
        domain_dir = _domain_dir(manual_dir, domain)
        for group_index, group in enumerate(OFFICEHOME_TASK_LABELS):
            if len(tasks) == num_tasks:
                return tasks
            xs: list[list[np.ndarray]] = [[], [], []]
            ys: list[list[np.ndarray]] = [[], [], []]
            for position, class_index in enumerate(group):
                images = _load_class(
                    domain_dir, domain, OFFICEHOME_CLASS_LABELS[class_index], cache_dir
                )
                rng = np.random.default_rng([seed, domain_index, class_index])
                for split, index in enumerate(_split_indices(len(images), rng)):
                    xs[split].append(images[index])
                    ys[split].append(np.full(len(index), position, np.int32))
            arrays = {}
            shuffle = np.random.default_rng([seed, domain_index, group_index, 1])
            for split, key in enumerate(("train", "val", "test")):
                y = np.concatenate(ys[split])
                order = shuffle.permutation(len(y))
                x = np.concatenate(xs[split])[order]
                arrays[f"x_{key}"] = x.astype(np.float32) / np.float32(255.0)
                arrays[f"y_{key}"] = y[order]
            name = f"office_home t{len(tasks)} {domain} group{group_index}"
            tasks.append(Task(**arrays, name=name, num_classes=len(group)))
    return tasks
