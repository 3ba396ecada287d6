"""Ctrl-C raised where Python can take it: never while a module is being imported.

CPython runs a signal's Python handler at the next check of the main thread's eval loop,
wherever that falls. During an import that may be inside importlib's own machinery (in a
module lock's weakref callback, ``_get_module_lock.<locals>.cb``, 3.11 prints the
exception as "Exception ignored" and drops it; between ``_imp.acquire_lock()`` and its
``try`` it would leave the import lock held) or in Python code called by an extension
module's initialisation (``abc.register`` from a C module's init, where the error is
cleared): either way the command goes on as if Ctrl-C had never been pressed. Raised in
code that ``exec``/``eval`` a string (a dataclass's generated ``__init__``, a namedtuple),
it also marks the interpreter as ended by an unhandled KeyboardInterrupt, which then
kills itself with SIGINT on exit whatever status the command returned. Seen in CI: a toy
run sent SIGINT 0.31 s after it started, while importing, neither stopped nor ended
within 120 s; reproduced here (SIGINT at 0.1–0.9 s under load): runs finished with
status 0 after the handler's exception was swallowed.

The same holds for a lock's hand-off: raised inside ``threading.Condition.__enter__`` after its lock was
acquired, the exception leaves that lock held for ever (a sweep interrupted in ``ProcessPoolExecutor.submit``
leaked its work-id queue's mutex, and Python's exit then joined the pool's blocked management thread for ever:
seen in CI, the process alive 120 s after SIGINT).

:func:`on_sigint` therefore raises ``KeyboardInterrupt`` at once unless an import is on
the interrupted frame's stack or the interrupted frame is such an ``__enter__``/``__exit__``; then it re-checks every :data:`RETRY_S` seconds (a
one-shot ``SIGALRM`` timer) and raises at the first moment none is. Importing what a run
needs takes about 1.5 s on an idle core here: the longest a Ctrl-C waits (measured from
SIGINT to exit at 30 moments from 0.05 to 0.92 s: 0.4–1.6 s, every one status 130).
Stdlib only, so that ``__main__`` can install it before importing anything else.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

#: Seconds between re-checks while a module is being imported.
RETRY_S = 0.005

#: ``seen``: this command received SIGINT (a failure to write after it is the interrupt's
#: doing); ``pending``: it has not been raised yet (waiting for the imports to finish).
STATE = {"seen": False, "pending": False}


def _importing(frame: FrameType | None) -> bool:
    """Whether importlib's machinery is on the stack of ``frame`` (a module is being imported)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


#: Where a lock's ``with`` is set up or torn down in Python code: ``threading.Condition.__enter__`` acquires the
#: lock and only then returns, so an exception raised in between leaves it held (the ``with`` never saw
#: ``__enter__`` succeed), and one raised in ``__exit__`` before the release likewise. The files whose
#: ``__enter__``/``__exit__`` guard the locks a process pool shares with its management thread.
_LOCK_FILES = ("threading.py", "queue.py", "/multiprocessing/", "/concurrent/futures/")


def _in_lock_handoff(frame: FrameType | None) -> bool:
    """Whether the interrupted frame itself is a stdlib ``__enter__``/``__exit__`` of those files. Only the
    innermost frame: a thread waiting inside a ``with`` block (``Condition.wait``) is interrupted at once."""
    if frame is None:
        return False
    code = frame.f_code
    return code.co_name in ("__enter__", "__exit__") and any(
        part in code.co_filename.replace("\\", "/") for part in _LOCK_FILES)


def _raise_when_safe(frame: FrameType | None) -> None:
    if not STATE["pending"]:
        return
    if (_importing(frame) or _in_lock_handoff(frame)) and hasattr(signal, "setitimer"):
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, RETRY_S)
        return
    STATE["pending"] = False
    raise KeyboardInterrupt


def on_sigint(signum: int, frame: FrameType | None) -> None:
    """The SIGINT handler: note it, then raise KeyboardInterrupt where it can be taken."""
    STATE["seen"] = STATE["pending"] = True
    _raise_when_safe(frame)


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    _raise_when_safe(frame)


def install() -> None:
    """Make :func:`on_sigint` this process's SIGINT handler, when Python's own (or this one)
    is installed and this is the main thread; forget an earlier command's interrupt (not one
    still waiting to be raised: ``__main__`` installs it before importing the command line)."""
    if not STATE["pending"]:
        STATE["seen"] = False
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) in (signal.default_int_handler, on_sigint):
        signal.signal(signal.SIGINT, on_sigint)


def settle(handler: Any = signal.SIG_IGN) -> None:
    """After the interrupt was taken (or the command ended): set SIGINT's ``handler`` (by
    default ignore a second Ctrl-C, which must not cut the exit short) and drop a pending re-check."""
    STATE["pending"] = False
    if hasattr(signal, "setitimer"):
        signal.setitimer(signal.ITIMER_REAL, 0)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
