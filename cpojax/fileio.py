"""File utilities shared by the CLI and the library: atomic text writes."""

from __future__ import annotations

import os
import secrets
import stat

__all__ = ["atomic_write_text"]


def _create_temp(folder: str, name: str) -> tuple[int, str]:
    """Create and open a new file next to `name` in `folder`, mode 0o666 minus the umask."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = os.path.join(folder, f".tmp-{secrets.token_hex(6)}-{name}")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name for {name!r} in {folder!r}")


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `path` via a temporary file in the same folder and an atomic rename.

    A reader sees either the old file or the complete new one; an interrupted write
    leaves no temporary file behind. The file gets the permissions a plain
    ``open(path, "w")`` would give it: an existing file keeps its mode, a new one gets
    0o666 minus the umask (0o644 under the usual umask 022), not ``mkstemp``'s 0o600.

    Raises:
      OSError: the folder does not exist or is not writable, or `path` is a folder.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        keep_mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        keep_mode = None
    fd, tmp = _create_temp(folder, os.path.basename(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            if keep_mode is not None:
                os.fchmod(f.fileno(), keep_mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
