"""A small file system that a test can fill up for real: a tmpfs mounted for the test."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path
from types import TracebackType

import pytest


class SmallFilesystem:
    """A tmpfs of ``size_bytes`` mounted at ``mount_point`` while the ``with`` block runs.

    Mounting needs root (CAP_SYS_ADMIN); elsewhere the test is skipped with the reason. (A
    private mount namespace from ``unshare --user --mount`` would need no root, but SQLite
    resolves ``/proc/<pid>/root`` paths back into the test's own namespace, so the test could not
    open the database that the gateway writes there.)
    """

    def __init__(self, mount_point: Path, size_bytes: int) -> None:
        self.path = mount_point
        self.size_bytes = size_bytes
        self._mounted = False
        self._ballast = mount_point / "ballast"

    def __enter__(self) -> SmallFilesystem:
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            mounted = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={self.size_bytes}", "ecommunity-test",
                 str(self.path)],
                capture_output=True,
                text=True,
                timeout=10,
            )  # fmt: skip
        except FileNotFoundError:
            pytest.skip("no mount command here to mount a small file system")
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
        self._mounted = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._mounted:
            # Lazy: a process the test failed to stop may still hold files open in it.
            subprocess.run(["umount", "--lazy", str(self.path)], check=True, timeout=10)
            self._mounted = False

    def free_bytes(self) -> int:
        stats = os.statvfs(self.path)
        return stats.f_bavail * stats.f_frsize

    def fill(self) -> int:
        """Write a ballast file until the file system is full; return its size [bytes]."""
        written = 0
        with self._ballast.open("wb", buffering=0) as out:
            for block in (1 << 20, 4096, 1):
                try:
                    while True:
                        written += out.write(b"\0" * block)
                except OSError as exc:  # full: on to smaller blocks, for the last bits of room
                    if exc.errno != errno.ENOSPC:
                        raise
        return written

    def free(self) -> None:
        """Remove the ballast: the space is back."""
        self._ballast.unlink()
