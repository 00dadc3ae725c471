"""Trial claims of the tuning jobs sharing one study (pipeline step 12).

Workers (Snakemake jobs) share the finished slots through an Optuna ``JournalStorage``
file and claim slots with claim files held under an OS lock, so any number of jobs
(including one job at a time, as with ``--cores 1``) completes the same study. A worker
waits only for slots that another live worker is computing: the OS releases a killed
worker's lock, and its claim is taken over at once (where the file system has no
``flock``, once its heartbeat is older than ``stale_after_s``). :class:`NoClaims` is the
single-process case.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------
# Slot claims shared between worker jobs
# ---------------------------------------------------------------------------------
class NoClaims:
    """Single worker: nothing to coordinate."""

    def active(self, slot: int) -> bool:
        return False

    def claim(self, slot: int) -> bool:
        return True

    def release(self, slot: int) -> None:
        pass

    def heartbeat(self, slot: int):
        return Heartbeat(None, 0)


class Heartbeat:
    """Touches a claim file periodically while a slot is being computed."""

    def __init__(self, path: Path | None, every_s: float):
        self.path, self.every_s = path, every_s
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        if self.path is not None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self.every_s):
            try:
                os.utime(self.path)
            except OSError:
                return

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


class FileClaims:
    """Claim files, each held under an OS lock (``flock``) by the worker computing the slot.

    The OS drops a process's locks when it exits, however it dies (kill -9, a cancelled
    SLURM job, an out-of-memory kill), so a claim whose lock can be taken belongs to a
    dead worker and is taken over at once, with no waiting. A claim appears already
    locked: it is written under a private name, locked, then hard-linked into place
    (atomic; fails if the slot is claimed). On a file system without ``flock`` (some NFS
    set-ups) claims fall back to their heartbeat: stale after ``stale_after_s``.
    """

    def __init__(self, folder: Path, stale_after_s: float, heartbeat_s: float):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.stale_after_s, self.heartbeat_s = stale_after_s, heartbeat_s
        self._held: dict[int, int] = {}  # slot -> fd holding the lock of our claim

    def result_path(self, slot: int) -> Path:
        return self.folder / f"slot{slot:05d}.claim"

    def _aged_out(self, path: Path) -> bool:
        try:
            return time.time() - path.stat().st_mtime >= self.stale_after_s
        except FileNotFoundError:
            return True

    def active(self, slot: int) -> bool:
        """True while a live worker holds the slot's claim."""
        if slot in self._held:
            return True
        path = self.result_path(slot)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False  # nobody holds it: the owner is gone
        except BlockingIOError:
            return True
        except OSError:  # no flock here: trust the heartbeat
            return not self._aged_out(path)
        finally:
            os.close(fd)

    def _take_over(self, path: Path) -> bool:
        """Remove the claim at ``path`` if its owner is dead; False if it is alive."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return True
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            except OSError:
                if not self._aged_out(path):
                    return False
            owner = os.read(fd, 200).decode(errors="replace").strip()
            try:  # still the same claim file (not a new one made since we opened it)?
                if os.stat(path).st_ino != os.fstat(fd).st_ino:
                    return False
                os.unlink(path)
            except FileNotFoundError:
                return True
            log.warning("%s: owner %s is gone, claim taken over", path.name, owner or "?")
            return True
        finally:
            os.close(fd)

    def claim(self, slot: int) -> bool:
        path = self.result_path(slot)
        if path.exists() and not self._take_over(path):
            return False
        private = self.folder / f".slot{slot:05d}.{uuid.uuid4().hex}"
        fd = os.open(private, os.O_CREAT | os.O_EXCL | os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # no flock on this file system: the heartbeat covers it
                pass
            os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
            os.link(private, path)
        except FileExistsError:
            os.close(fd)
            return False
        finally:
            os.unlink(private)
        self._held[slot] = fd
        return True

    def release(self, slot: int) -> None:
        # Unlink before unlocking: a visible claim is always locked while its owner lives.
        try:
            os.unlink(self.result_path(slot))
        except FileNotFoundError:
            pass
        fd = self._held.pop(slot, None)
        if fd is not None:
            os.close(fd)

    def heartbeat(self, slot: int):
        return Heartbeat(self.result_path(slot), self.heartbeat_s)
