"""The durable store of finished points: an append-only JSON-lines file, one fsync per line.

Each line is one finished point::

    {"key": "3f9c...", "status": "ok", "message": "", "summary": {...}, "wall_s": 1.93}

``key`` is :func:`config_key` of the point's resolved workload, so a rerun of the same
sweep (or of another sweep that reaches the same configuration) skips it. A line is
written with one ``write`` and made durable with ``fsync`` before the next point is
recorded, so killing the sweep (even with SIGKILL) loses at most the points still being
simulated; a torn last line (a crash of the machine mid-write) is dropped when the store
is opened again. One sweep at a time may write a store (an exclusive ``flock``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import simcluster

#: Bumped when what a stored record means changes; part of every key.
STORE_FORMAT = 1
#: Keys of the resolved workload that only say where it came from, not what it is.
PROVENANCE = ("name", "source")


class StoreBusy(RuntimeError):
    """Another process is writing the same store."""


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()


def config_key(resolved: dict[str, Any]) -> str:
    """The store key of a resolved workload (``WorkloadSpec.resolved_dict()``).

    Provenance (names, source files) is left out; the simulator's version and the store
    format are put in, so results of another version are simulated again.
    """
    config = {k: v for k, v in resolved.items() if k not in PROVENANCE}
    if isinstance(config.get("cluster"), dict):
        config["cluster"] = {k: v for k, v in config["cluster"].items() if k != "source"}
    salt = {"simcluster": simcluster.__version__, "store_format": STORE_FORMAT}
    return hashlib.sha256(_canonical({"config": config, "salt": salt})).hexdigest()[:24]


def invalid_key(raw: Any) -> str:
    """The store key of a point that is not a valid workload (from what was written)."""
    return "invalid-" + hashlib.sha256(_canonical({"invalid": raw, "store_format": STORE_FORMAT})).hexdigest()[:16]


class Store:
    """Finished points of a sweep, in ``path`` (JSON lines)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fd: int | None = None

    def load(self) -> dict[str, dict[str, Any]]:
        """Every complete record, by key (a key written twice: the last one wins)."""
        records, _ = self._read()
        return records

    def _read(self) -> tuple[dict[str, dict[str, Any]], int]:
        """The records and the byte length of the file's complete, readable lines."""
        if not self.path.exists():
            return {}, 0
        data = self.path.read_bytes()
        complete = data.rfind(b"\n") + 1  # bytes after the last newline: a torn line, never acknowledged
        records: dict[str, dict[str, Any]] = {}
        for line in data[:complete].splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("key"), str):
                records[record["key"]] = record
        return records, complete

    def open(self) -> dict[str, dict[str, Any]]:
        """Open for appending (dropping a torn last line); return the records already there.

        Raises :class:`StoreBusy` when another process holds the store.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            _lock(fd, self.path)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        records, good = self._read()
        if good < os.fstat(fd).st_size:
            os.ftruncate(fd, good)
            os.fsync(fd)
        if created:
            _fsync_dir(self.path.parent)
        return records

    def append(self, record: dict[str, Any]) -> None:
        """Write one record and make it durable before returning."""
        if self._fd is None:
            raise RuntimeError("store is not open")
        line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode()
        view = memoryview(line)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lock(fd: int, path: Path) -> None:
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise StoreBusy(f"{path} is being written by another sweep") from None


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
