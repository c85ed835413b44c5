"""Flags and helpers to run one launcher over several processes or hosts (`jax.distributed`)."""

from collections.abc import Sequence
from typing import TypeVar

import jax
from absl import flags, logging

T = TypeVar("T")

_COORDINATOR = flags.DEFINE_string(
    "coordinator_address",
    None,
    "host:port of process 0 (jax.distributed.initialize); with --num_processes > 1 every "
    "process trains its share of the runs.",
)
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", 1, "Processes of the job.")
_PROCESS_ID = flags.DEFINE_integer("process_id", 0, "This process's index, 0..num_processes-1.")


def init() -> tuple[int, int]:
    """Joins the job given by the flags; returns `(process_index, process_count)`.

    Without --coordinator_address (or with one process) nothing is initialised: `(0, 1)`.

    Raises:
      ValueError: inconsistent flags.
    """
    count, index = _NUM_PROCESSES.value, _PROCESS_ID.value
    if count < 1 or not 0 <= index < count:
        raise ValueError(
            f"--process_id={index} must be in 0..--num_processes-1 (--num_processes={count})."
        )
    if count == 1:
        return 0, 1
    if not _COORDINATOR.value:
        raise ValueError("--num_processes > 1 needs --coordinator_address=host:port of process 0.")
    jax.distributed.initialize(_COORDINATOR.value, num_processes=count, process_id=index)
    logging.info("Process %d of %d; %d local device(s).", index, count, len(jax.local_devices()))
    return index, count


def share(items: Sequence[T], index: int, count: int) -> list[T]:
    """This process's share of `items`: every `count`-th one from `index` (each item once)."""
    return list(items[index::count])
