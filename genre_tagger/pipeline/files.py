"""Opening a library's files: regular files only, and never blocking.

A file replaced by a FIFO after the library was listed would block ``open()`` forever,
and a device or socket is no music; so files are opened with ``O_NONBLOCK`` and checked
with ``fstat`` before anything is read.
"""

from __future__ import annotations

import errno
import io
import os
import stat

__all__ = ["MIN_FREE_BYTES", "NotRegularFile", "check_free_space", "open_regular"]

#: what a journal or a report needs free on its disk before a scan starts writing it
MIN_FREE_BYTES = 1 << 20


class NotRegularFile(OSError):
    """The path is a FIFO, a device, a socket or a folder, not a regular file."""


def open_regular(path: str | os.PathLike[str], mode: str = "rb") -> io.BufferedIOBase:
    """``open(path, mode)`` for a regular file (``"rb"`` or ``"r+b"``), without ever
    blocking; :class:`NotRegularFile` for anything else, ``OSError`` as ``open`` raises it."""
    flags = (os.O_RDWR if "+" in mode else os.O_RDONLY) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a folder" if stat.S_ISDIR(st.st_mode) else "a device or socket"
            raise NotRegularFile(f"{os.fspath(path)} is {kind}, not a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)  # O_NONBLOCK was only for the open
        return os.fdopen(fd, mode)
    except BaseException:
        os.close(fd)
        raise


def first_line(path: str | os.PathLike[str], limit: int = 64 * 1024) -> str:
    """The first line of a regular file (at most ``limit`` bytes; never blocking on a
    FIFO), ``""`` when it is not one or cannot be read as UTF-8: what tells an output file
    of ours (a report, a journal) from a user's."""
    try:
        with open_regular(path) as handle:
            return handle.readline(limit).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def check_free_space(folder: str | os.PathLike[str], needed: int = MIN_FREE_BYTES) -> None:
    """``OSError(ENOSPC)`` when the disk of ``folder`` has less than ``needed`` bytes free."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):  # no statvfs (Windows): the writes will tell
        return
    if st.f_blocks and st.f_bavail * st.f_frsize < needed:  # /proc and the like have no blocks at all
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
