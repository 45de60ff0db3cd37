"""One writer per output: a command takes a lock file in the folder it writes (hidden, so
no folder check counts it as content), holds it until it ends and then removes it; a
second command writing there is refused in one line that names the first one's process.
The lock is the kernel's (flock), so a killed holder never leaves the folder locked; a
lock file it leaves behind is simply taken by the next command."""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

from sslx.errors import InputError


class FolderLock:
    """Held from construction until `release()` (or the process's end)."""

    def __init__(self, folder: Path, name: str = "sslx") -> None:
        self.path = Path(folder) / f".{name}.lock"
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 300, 0).decode(errors="replace").strip()
                os.close(fd)
                raise InputError(
                    f"{folder} is being written by {holder or 'another process'}; wait for it "
                    "to end, or use another --out"
                ) from None
            if self._still_there(fd):
                break
            os.close(fd)  # its holder removed the file as we opened it: take a fresh one
        self.fd: int | None = fd
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} ({' '.join(sys.argv[:2])})".encode(), 0)

    def _still_there(self, fd: int) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def release(self) -> None:
        if self.fd is not None:
            self.path.unlink(missing_ok=True)  # while still held: no one can take it between
            os.close(self.fd)
            self.fd = None
