"""``python -m simcluster`` and the ``simcluster`` console script: the command line."""

import os
import sys
import threading
import time

import simcluster.interrupt as interrupt

#: After Ctrl-C, how long the exit waits for the other (non-daemon) threads before it leaves without them.
STUCK_THREAD_GRACE_S: float = 5.0


def _by_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is Ctrl-C or an error raised because of it: Python 3.11 wraps an exception
    raised in a class body's ``__set_name__`` (a dataclass field, while a module is imported) in a
    RuntimeError whose cause is the KeyboardInterrupt. (``cli._interrupted`` asks the same of
    errors inside a command; this one cannot import ``cli``, whose import may be what was cut.)"""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        cur = todo.pop()
        if cur is None or id(cur) in seen:
            continue
        if isinstance(cur, KeyboardInterrupt):
            return True
        seen.add(id(cur))
        todo += [cur.__cause__, cur.__context__]
    return False


def entry() -> None:
    """Run the command line and exit with its status (the console script ``simcluster``)."""
    interrupt.install()  # before anything is imported: Ctrl-C raised outside importlib's machinery
    before = set(threading.enumerate())  # threads not the command's (none from the console; a host's, in-process)
    try:
        from simcluster.cli import main

        code = main()
    except BaseException as e:  # Ctrl-C while importing, before the commands handle it themselves
        if not _by_interrupt(e):
            raise
        interrupt.settle()
        print("\nsimcluster: interrupted", file=sys.stderr)
        code = 130
    interrupt.settle()  # done: a late Ctrl-C must not break the exit
    if code == 130:
        quiet_unraisable()
        leave_stuck_threads(ignore=before)
    sys.exit(code)


def quiet_unraisable() -> None:
    """After Ctrl-C, let nothing print a traceback on the way out: Python 3.11's ``concurrent.futures`` exit hook
    may wake the interrupted process pool's management thread through a pipe already closed ("Exception ignored
    in: <module 'threading'> ... OSError: [Errno 9] Bad file descriptor", ``_ThreadWakeup.wakeup`` without the
    closed check 3.12 added). Such exceptions reach ``sys.unraisablehook`` only; the interrupt was already
    reported and the finished points kept."""
    sys.unraisablehook = lambda unraisable: None


def leave_stuck_threads(grace_s: float | None = None, code: int = 130,
                        ignore: set[threading.Thread] | frozenset[threading.Thread] = frozenset()) -> None:
    """After Ctrl-C, do not wait forever for a thread the interrupt left stuck. A KeyboardInterrupt raised in
    the main thread between a library lock's acquire and the ``with`` block that releases it (inside
    ``Condition.__enter__``, a Python frame, so the interpreter may raise there) leaves that lock held: a sweep
    interrupted in ``ProcessPoolExecutor.submit`` leaks its work-id queue's mutex, the pool's management thread
    then blocks on it, and Python 3.11's exit hook (``concurrent.futures.process._python_exit``) joins that
    thread for ever (seen in CI: the process alive 120 s after SIGINT, the management thread in
    ``add_call_item_to_queue`` → ``queue.get``). So: give the other non-daemon threads ``grace_s`` to end (a pool
    shut down normally ends its thread in well under a second), and if one is still alive, flush and leave with
    ``code`` without the exit hooks. The finished points are already stored (the store closes before the
    interrupt reaches the command) and every worker process exits when its parent does (``_exit_with``).
    Threads in ``ignore`` (those alive before the command started: a test runner's, when ``entry`` runs
    in-process) are neither waited for nor a reason to leave."""
    grace = STUCK_THREAD_GRACE_S if grace_s is None else grace_s
    deadline = time.monotonic() + grace
    others = [t for t in threading.enumerate()
              if t is not threading.main_thread() and not t.daemon and t not in ignore]
    for t in others:
        t.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in others):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed or broken pipe: nothing more to say
                pass
        os._exit(code)


if __name__ == "__main__":
    entry()
