"""A validated lifelong-learning task: train/validation/test images and labels."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

_SPLITS = ("train", "val", "test")
_INT32_MAX = np.iinfo(np.int32).max


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Task:
    """One classification task of a lifelong scenario, validated on construction.

    Images are NHWC floating-point arrays and are stored as ``float32``; labels are 1-D integer
    arrays and are stored as ``int32``. Construction fails with a ``ValueError`` that names the
    task, the split and the fix whenever the data is malformed (see ``__post_init__``).

    Channels-first data is caught by shape: an array whose axis 1 has at most 4 entries while
    axes 2 and 3 both have more than 4 (``(N, 1, 8, 8)``, ``(N, 3, 32, 32)``) is taken for NCHW
    and rejected with the transpose that fixes it. A genuine NHWC image that flat (height <= 4,
    width and channels > 4) is therefore not accepted.

    Classes: without ``num_classes`` the class count is inferred from the training labels as
    ``max(y_train) + 1``, and the training labels must use every class ``0..max`` (no gaps)
    while validation and test labels must lie within that range, because a class with no
    training example cannot be learned and an extra output would silently change the task (a
    stray label 7 would make 8 classes). Pass ``num_classes`` explicitly to allow classes that
    are missing from the training split; every label of every split must then be below it.

    Attributes:
        x_train: Training images, shape ``[N_train, H, W, C]``, ``float32``.
        y_train: Training labels, shape ``[N_train]``, ``int32`` in ``0..num_classes-1``.
        x_val: Validation images, shape ``[N_val, H, W, C]``, ``float32``.
        y_val: Validation labels, shape ``[N_val]``, ``int32``.
        x_test: Test images, shape ``[N_test, H, W, C]``, ``float32``.
        y_test: Test labels, shape ``[N_test]``, ``int32``.
        name: Human-readable description used in error messages and logs.
        num_classes: Number of output classes; when ``None``, inferred as ``max(y_train) + 1``
            (training labels without gaps, val/test labels within them; see above).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str = ""
    num_classes: int | None = None

    def __post_init__(self) -> None:
        """Validates every field and coerces images to float32 and labels to int32.

        Raises:
            ValueError: If a split is not 4-D NHWC (or looks like NCHW), has a non-floating
                dtype, is empty, contains NaN/inf, disagrees in image shape with the other splits,
                or if labels are not 1-D integers of matching length within
                ``0..num_classes-1`` (with an inferred ``num_classes``: if the training labels
                have gaps or a val/test label exceeds the largest training label).
        """
        if not isinstance(self.name, str):
            raise ValueError(
                f"task: `name` must be a str, got {type(self.name).__name__}; pass name='...'."
            )
        images: dict[str, np.ndarray] = {}
        labels: dict[str, np.ndarray] = {}
        for split in _SPLITS:
            images[split] = self._check_images(split, getattr(self, f"x_{split}"))
        reference = images["train"].shape[1:]
        for split in _SPLITS[1:]:
            if images[split].shape[1:] != reference:
                raise self._error(
                    f"x_{split} has image shape (H, W, C) = {images[split].shape[1:]} but x_train "
                    f"has {reference}; all splits of a task must share one image shape (resize or "
                    "crop them to the same size)."
                )
        for split in _SPLITS:
            labels[split] = self._check_labels(split, getattr(self, f"y_{split}"), images[split])
        num_classes = self._check_num_classes(labels)
        for split in _SPLITS:
            object.__setattr__(self, f"x_{split}", images[split])
            object.__setattr__(self, f"y_{split}", labels[split])
        object.__setattr__(self, "num_classes", num_classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The image shape ``(H, W, C)`` shared by all splits."""
        height, width, channels = self.x_train.shape[1:]
        return (int(height), int(width), int(channels))

    @property
    def num_train(self) -> int:
        """The number of training examples ``N_train``."""
        return int(self.x_train.shape[0])

    def __repr__(self) -> str:
        shapes = ", ".join(f"{split}={getattr(self, f'x_{split}').shape[0]}" for split in _SPLITS)
        return (
            f"Task(name={self.name!r}, image_shape={self.image_shape}, "
            f"num_classes={self.num_classes}, {shapes})"
        )

    # ------------------------------------------------------------------------------------------
    # Validation helpers.

    @property
    def _label(self) -> str:
        return repr(self.name) if self.name else "task"

    def _error(self, message: str) -> ValueError:
        return ValueError(f"{self._label}: {message}")

    def _check_images(self, split: str, value: Any) -> np.ndarray:
        field = f"x_{split}"
        try:
            array = np.asarray(value)
        except Exception as exc:
            raise self._error(
                f"{field} could not be converted to a numpy array ({exc}); pass a numeric "
                "[N, H, W, C] array."
            ) from exc
        if array.ndim != 4:
            raise self._error(
                f"{field} must be a 4-D NHWC array [N, H, W, C], got shape {array.shape}; add a "
                "channel axis for grey images (x[..., None]) or transpose NCHW data to NHWC."
            )
        _, channels, height, width = array.shape
        if channels <= 4 < min(height, width):
            raise self._error(
                f"{field} has shape {array.shape}, which looks like channels-first NCHW "
                f"({channels} channel(s) of {height}x{width}); transpose to NHWC with "
                "x.transpose(0, 2, 3, 1)."
            )
        if np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_:
            raise self._error(
                f"{field} has integer dtype {array.dtype}; scale the images to float first, e.g. "
                "x.astype(np.float32) / 255."
            )
        if not np.issubdtype(array.dtype, np.floating):
            raise self._error(
                f"{field} has dtype {array.dtype}, which is not a floating-point dtype; convert "
                "the images to float32."
            )
        if array.shape[0] == 0:
            raise self._error(
                f"{field} is empty (shape {array.shape}); every split needs at least one example."
            )
        if min(array.shape[1:]) == 0:
            raise self._error(
                f"{field} has a zero-sized image dimension (shape {array.shape}); images must "
                "have H, W, C >= 1."
            )
        array = array.astype(np.float32, copy=False)
        num_bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        if num_bad:
            raise self._error(
                f"{field} contains {num_bad} non-finite pixel value(s) (NaN or inf) in split "
                f"'{split}'; clean or impute them before building the Task."
            )
        return array

    def _check_labels(self, split: str, value: Any, images: np.ndarray) -> np.ndarray:
        field = f"y_{split}"
        array = np.asarray(value)
        if array.ndim != 1:
            raise self._error(
                f"{field} must be a 1-D array of integer class ids, got shape {array.shape}; "
                "convert one-hot labels with y.argmax(-1) or flatten [N, 1] labels with "
                "y.reshape(-1)."
            )
        if not np.issubdtype(array.dtype, np.integer):
            raise self._error(
                f"{field} has dtype {array.dtype}; labels must be integer class ids, e.g. "
                "y.astype(np.int32)."
            )
        if array.shape[0] != images.shape[0]:
            raise self._error(
                f"{field} has {array.shape[0]} labels but x_{split} has {images.shape[0]} "
                "images; every image needs exactly one label."
            )
        minimum, maximum = int(array.min()), int(array.max())
        if minimum < 0:
            raise self._error(
                f"{field} contains negative label {minimum}; labels must be class ids "
                "0..num_classes-1 (remap them, e.g. with np.unique(y, return_inverse=True))."
            )
        if maximum > _INT32_MAX:
            raise self._error(
                f"{field} contains label {maximum}, which does not fit in int32; remap labels "
                "to 0..num_classes-1."
            )
        return array.astype(np.int32, copy=False)

    def _infer_num_classes(self, labels: dict[str, np.ndarray]) -> int:
        num_classes = int(labels["train"].max()) + 1
        missing = np.setdiff1d(np.arange(num_classes), labels["train"])
        if missing.size:
            raise self._error(
                f"y_train has no example of class(es) {missing[:5].tolist()} below its largest "
                f"label {num_classes - 1}, so those classes could never be learned; remap the "
                "labels to 0..K-1 (np.unique(y, return_inverse=True)) or pass num_classes "
                "explicitly if the gap is intended."
            )
        for split in _SPLITS[1:]:
            split_max = int(labels[split].max())
            if split_max >= num_classes:
                raise self._error(
                    f"y_{split} contains label {split_max}, which y_train never uses (num_classes="
                    f"{num_classes} is inferred from y_train's labels 0..{num_classes - 1}); fix "
                    f"the labels or pass num_classes={split_max + 1} explicitly."
                )
        return num_classes

    def _check_num_classes(self, labels: dict[str, np.ndarray]) -> int:
        num_classes = self.num_classes
        if num_classes is None:
            return self._infer_num_classes(labels)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer):
            raise self._error(
                f"num_classes must be an int or None, got {type(num_classes).__name__}; pass "
                "an int or leave it None to infer max label + 1."
            )
        num_classes = int(num_classes)
        if num_classes < 1:
            raise self._error(
                f"num_classes must be >= 1, got {num_classes}; pass the number of classes or "
                "leave it None to infer it."
            )
        for split in _SPLITS:
            split_max = int(labels[split].max())
            if split_max >= num_classes:
                raise self._error(
                    f"y_{split} contains label {split_max} but num_classes={num_classes}; labels "
                    f"must be in 0..{num_classes - 1} (increase num_classes or remap the labels)."
                )
        return num_classes


def validate_tasks(tasks: Sequence[Task]) -> None:
    """Checks that ``tasks`` is a usable lifelong scenario.

    Args:
        tasks: The tasks in training order, length ``T >= 1``.

    Raises:
        ValueError: If ``tasks`` is empty, an element is not a ``Task``, or the tasks do not all
            share the image shape ``(H, W, C)`` of task 0 (the message names the first mismatching
            task index and both shapes).
    """
    tasks = list(tasks)
    if not tasks:
        raise ValueError("tasks: the task sequence is empty; pass at least one Task.")
    for index, task in enumerate(tasks):
        if not isinstance(task, Task):
            raise ValueError(
                f"tasks[{index}] is a {type(task).__name__}, not a Task; wrap the arrays in "
                "lasem_jax.task.Task(...)."
            )
    reference = tasks[0].image_shape
    for index, task in enumerate(tasks[1:], start=1):
        if task.image_shape != reference:
            raise ValueError(
                f"tasks[{index}] ({task._label}) has image shape (H, W, C) = {task.image_shape} "
                f"but tasks[0] ({tasks[0]._label}) has {reference}; all tasks share one network "
                "input, so resize or crop them to the same shape."
            )
