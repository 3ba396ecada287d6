"""Drawing on a second core: some of a run's files made by a forked child process.

Matplotlib holds the GIL while it draws, so threads cannot share the drawing; a forked child
can, and it starts with the timeline already in memory (copy-on-write: nothing is pickled).
:func:`start` forks when that is safe (POSIX, two cores or more, no other thread alive in
this process, ``SIMCLUSTER_NO_FORK`` unset) and otherwise runs the work at :meth:`Job.join`,
in this process: the files are the same either way. The child reports back what it wrote and
how long each took, or the error it met, which :meth:`Job.join` raises here.
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
import traceback
from typing import Any, Callable

Result = list[tuple[str, float]]


def can_fork() -> bool:
    """Whether forking a drawing child is safe and worth it here."""
    if not hasattr(os, "fork") or os.environ.get("SIMCLUSTER_NO_FORK"):
        return False
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return cores >= 2 and threading.active_count() == 1


class Job:
    """Work running in a forked child, or deferred to :meth:`join` when forking is not possible."""

    def __init__(self, work: Callable[[], Result]) -> None:
        self.work = work
        self.pid = 0
        self.fd = -1
        if can_fork():
            r, w = os.pipe()
            # Ctrl-C is held back across the fork: a child interrupted before it ignores SIGINT
            # would run the parent's interrupt path, and a parent interrupted before it knows
            # the child's pid could not stop it (the child would hold the parent's output open).
            # A handler that only notes it (not a blocked signal mask: any other thread of the
            # process, a BLAS pool's, may take a process-directed signal)
            held: list[int] = []
            before = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
            if before is None:  # (a handler not set from Python)
                before = signal.SIG_DFL
            try:
                pid = os.fork()
            except BaseException:
                signal.signal(signal.SIGINT, before)
                os.close(r)
                os.close(w)
                raise
            if pid == 0:  # the child: do the work, report, leave without running the parent's cleanup
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops us
                os.close(r)
                code = 0
                try:
                    payload: Any = ("ok", work())
                except BaseException:  # noqa: BLE001 - everything goes back to the parent
                    payload, code = ("error", traceback.format_exc()), 1
                try:
                    with os.fdopen(w, "wb") as fh:
                        fh.write(pickle.dumps(payload))
                finally:
                    os._exit(code)
            os.close(w)
            self.pid, self.fd = pid, r
            signal.signal(signal.SIGINT, before)
            if held:  # stop the child, then the Ctrl-C takes its course (ignored: join works here)
                self.cancel()
                signal.raise_signal(signal.SIGINT)

    def join(self) -> Result:
        """The work's result (files written and seconds each); raises RuntimeError when the child failed."""
        if not self.pid:
            return self.work()
        fd, self.fd = self.fd, -1  # closed by the reader below, even when Ctrl-C interrupts the read
        with os.fdopen(fd, "rb") as fh:
            data = fh.read()
        _, status = os.waitpid(self.pid, 0)
        self.pid = 0
        if not data:
            raise RuntimeError(f"the drawing process ended without a report (wait status {status})")
        kind, value = pickle.loads(data)
        if kind != "ok":
            raise RuntimeError(f"drawing in a child process failed:\n{value}")
        return value  # type: ignore[no-any-return]

    def cancel(self) -> None:
        """Stop the child (after an error or Ctrl-C here) and reap it."""
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGTERM)
                os.waitpid(self.pid, 0)
            except OSError:
                pass
            if self.fd >= 0:  # not yet handed to join's reader
                os.close(self.fd)
                self.fd = -1
            self.pid = 0


def start(work: Callable[[], Result]) -> Job:
    """Start ``work`` on another core when possible (see the module docstring)."""
    return Job(work)
