"""One process per workdir: an advisory lock file holding the owner's pid, freed when it dies."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from lasem_jax.storage import files


class WorkdirBusyError(RuntimeError):
    """Another live process holds the workdir's lock."""


@contextlib.contextmanager
def hold(workdir: str | None) -> Iterator[None]:
    """Holds `<workdir>/.lock` for the block (nothing to hold for `workdir=None`).

    The lock is an `flock` on the file, so the kernel frees it when the holder exits or is
    killed: a lock left by a killed process is taken over silently.

    Raises:
      WorkdirBusyError: another process holds it (the message names its pid).
    """
    if not workdir:
        yield
        return
    os.makedirs(workdir, exist_ok=True)
    path = files.path(workdir, files.LOCK)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise WorkdirBusyError(
                f"{workdir} is in use by process {holder}; wait for it to finish, stop it, or "
                "use another --workdir."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
