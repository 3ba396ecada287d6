"""Executors: simulate points somewhere and yield ``(key, record)`` as each one finishes.

``local`` is a process pool with an explicit start method (``forkserver`` where the
platform has it, else ``spawn``: never ``fork``, which copies the parent's threads and
locks). If a worker process dies (killed, out of memory, a crash in native code) the pool
is rebuilt and the points that were in flight are tried again, one at a time, so that the
point that kills its worker is found: one that does so :data:`MAX_ATTEMPTS` times is
recorded as an error and the sweep goes on. ``dask`` sends the points to
``dask.distributed``: a LocalCluster of ``jobs`` single-threaded worker processes, or an
existing cluster's scheduler (``--scheduler tcp://host:port``), whose workers must have
simcluster installed. Dask itself retries a task whose worker died.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterator

from simcluster.sweep.worker import one_line, simulate_point

Job = tuple[str, Any]  # (store key, validated WorkloadSpec)
Result = tuple[str, dict[str, Any]]
MAX_ATTEMPTS = 3
EXTRA = "pip install -e '.[dask]'  (the packages dask and distributed; as the README installs them)"


class MissingExtra(RuntimeError):
    """An optional dependency the chosen executor needs is not installed."""


class SchedulerUnreachable(RuntimeError):
    """``--scheduler ADDRESS`` could not be reached."""


def default_jobs() -> int:
    """The CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def default_start_method() -> str:
    """``forkserver`` where available (fast: workers fork from a server that imported simcluster
    once), else ``spawn``."""
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def error_record(reason: str) -> dict[str, Any]:
    return {"status": "error", "message": reason, "summary": None, "wall_s": 0.0}


def _exit_with(parent: int, interval_s: float = 1.0) -> None:
    """Worker initializer: end this worker soon after the sweep's process ``parent`` is gone
    (killed with SIGKILL, say), instead of lingering as an orphan. Ctrl-C is the parent's to
    handle (it ends the workers): a worker ignores SIGINT, so it prints no traceback."""
    import signal
    import threading
    import time

    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while True:
            time.sleep(interval_s)
            try:
                os.kill(parent, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:  # the pid was reused by another user's process
                os._exit(1)

    threading.Thread(target=watch, name="simcluster-parent-watch", daemon=True).start()


class LocalExecutor:
    """A local process pool of ``jobs`` workers."""

    name = "local"

    def __init__(self, jobs: int | None = None, start_method: str | None = None,
                 fn: Callable[[Any], dict[str, Any]] = simulate_point, max_attempts: int = MAX_ATTEMPTS):
        self.jobs = jobs or default_jobs()
        self.start_method = start_method or default_start_method()
        self.fn = fn
        self.max_attempts = max_attempts
        self.restarts = 0  # how many times a dead worker made the pool be rebuilt

    def _context(self) -> multiprocessing.context.BaseContext:
        ctx = multiprocessing.get_context(self.start_method)
        if self.start_method == "forkserver":
            ctx.set_forkserver_preload(["simcluster.run", "simcluster.sweep.worker"])
        return ctx

    def run(self, jobs: list[Job]) -> Iterator[Result]:
        pending: deque[Job] = deque(jobs)
        suspects: deque[Job] = deque()  # in flight when a worker died: tried again one at a time
        tries: Counter[str] = Counter()
        while pending or suspects:
            alone = bool(suspects)
            queue = deque([suspects.popleft()]) if alone else pending
            workers = 1 if alone else min(self.jobs, len(pending))
            lost: list[Job] = []
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=self._context(),
                                       initializer=_exit_with, initargs=(os.getpid(),))
            try:
                yield from self._drain(pool, queue, workers + (0 if alone else 1), lost)
            except BaseException:  # Ctrl-C, or the caller stopped early: end the workers now
                _terminate(pool)
                raise
            finally:
                pool.shutdown(wait=not lost, cancel_futures=True)
            if not lost:
                continue
            self.restarts += 1
            if not alone:
                suspects.extend(lost)
                continue
            (job,) = lost  # it died alone: this point kills its worker
            tries[job[0]] += 1
            if tries[job[0]] >= self.max_attempts:
                yield job[0], error_record(f"the worker process died {tries[job[0]]} times while simulating "
                                           "this point alone (out of memory? a crash in native code?)")
            else:
                suspects.appendleft(job)

    def _drain(self, pool: ProcessPoolExecutor, pending: deque[Job], window: int, lost: list[Job]) -> Iterator[Result]:
        """Feed ``pool`` at most ``window`` points at a time until all are done or a worker dies
        (then the points in flight go into ``lost``)."""
        inflight: dict[Future, Job] = {}
        try:
            while pending or inflight:
                while pending and len(inflight) < window and not lost:
                    job = pending.popleft()
                    try:
                        inflight[pool.submit(self.fn, job[1])] = job
                    except BrokenProcessPool:
                        pending.appendleft(job)
                        break
                if not inflight:
                    break
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=lambda f: inflight[f][0]):
                    job = inflight.pop(fut)
                    exc = fut.exception()
                    if exc is None:
                        yield job[0], fut.result()
                    elif isinstance(exc, BrokenProcessPool):
                        lost.append(job)
                    else:
                        yield job[0], error_record(one_line(exc))
                if lost:  # the pool is broken: every point still in flight fails the same way
                    for fut, job in inflight.items():
                        wait([fut])
                        exc = fut.exception()
                        if exc is None:
                            yield job[0], fut.result()
                        else:
                            lost.append(job)
                    inflight.clear()
                    return
        finally:
            for fut in inflight:
                fut.cancel()


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stop a pool's worker processes at once (their points are lost; finished ones are stored)."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):  # no public API before 3.14
        if proc.is_alive():
            proc.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


class DaskExecutor:
    """``dask.distributed``: a LocalCluster of ``jobs`` workers, or the cluster at ``scheduler``."""

    name = "dask"

    def __init__(self, jobs: int | None = None, scheduler: str | None = None,
                 fn: Callable[[Any], dict[str, Any]] = simulate_point):
        self.jobs = jobs or default_jobs()
        self.scheduler = scheduler
        self.fn = fn
        _import_distributed()  # fail early, before any point is prepared

    def run(self, jobs: list[Job]) -> Iterator[Result]:
        if not jobs:
            return
        distributed = _import_distributed()
        cluster = None
        if self.scheduler:
            try:
                client = distributed.Client(self.scheduler, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise SchedulerUnreachable(f"cannot reach the dask scheduler at {self.scheduler}: {one_line(exc)}") from None
        else:
            import logging

            cluster = distributed.LocalCluster(n_workers=min(self.jobs, len(jobs)), threads_per_worker=1,
                                               processes=True, host="127.0.0.1", dashboard_address=None,
                                               silence_logs=logging.ERROR)
            client = distributed.Client(cluster)
        try:
            futures = {client.submit(self.fn, spec, key=f"simcluster-point-{key}", pure=False): key for key, spec in jobs}
            for fut in distributed.as_completed(futures):
                key = futures[fut]
                if fut.status == "finished":
                    yield key, fut.result()
                else:
                    yield key, error_record(one_line(fut.exception()))
                fut.release()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise MissingExtra(f"the dask executor needs the optional extra: {EXTRA}") from None
    return distributed


def make_executor(kind: str, jobs: int | None = None, scheduler: str | None = None) -> LocalExecutor | DaskExecutor:
    """``local`` or ``dask``; raises MissingExtra when dask is asked for but not installed."""
    if kind == "local":
        return LocalExecutor(jobs)
    if kind == "dask":
        return DaskExecutor(jobs, scheduler)
    raise ValueError(f"unknown executor {kind!r}; known: local, dask")
