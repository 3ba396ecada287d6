"""simcluster.interrupt: Ctrl-C held back while a module is imported, raised once none is."""

from __future__ import annotations

import importlib
import signal
import sys
import time

import pytest

from simcluster import interrupt

MODULE = """
import signal, sys
from simcluster import interrupt
interrupt.on_sigint(signal.SIGINT, sys._getframe())  # "Ctrl-C" arriving in a module's body
FINISHED = True
"""


@pytest.fixture
def handlers():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGALRM)
    yield
    interrupt.settle(before[0])
    signal.signal(signal.SIGALRM, before[1])
    interrupt.STATE.update(seen=False, pending=False)


def test_raised_at_once_outside_an_import(handlers):
    with pytest.raises(KeyboardInterrupt):
        interrupt.on_sigint(signal.SIGINT, sys._getframe())
    assert interrupt.STATE == {"seen": True, "pending": False}


def test_held_back_during_an_import_then_raised(tmp_path, monkeypatch, handlers):
    (tmp_path / "sc_interrupted_module.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("sc_interrupted_module")  # the import is not cut short
    assert module.FINISHED and interrupt.STATE == {"seen": True, "pending": True}
    deadline = time.monotonic() + 5
    with pytest.raises(KeyboardInterrupt):
        while time.monotonic() < deadline:  # the re-check raises here, outside any import
            time.sleep(interrupt.RETRY_S / 5)
    assert interrupt.STATE == {"seen": True, "pending": False}


def test_settle_drops_a_pending_interrupt(tmp_path, monkeypatch, handlers):
    (tmp_path / "sc_settled_module.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("sc_settled_module")
    interrupt.settle()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    time.sleep(10 * interrupt.RETRY_S)  # nothing raised: the timer was cancelled
    assert not interrupt.STATE["pending"]


def test_install_keeps_an_interrupt_still_waiting(handlers):
    interrupt.STATE.update(seen=True, pending=True)  # Ctrl-C while __main__ imported the command line
    interrupt.install()
    assert interrupt.STATE == {"seen": True, "pending": True}
    interrupt.STATE.update(pending=False)
    interrupt.install()  # a later command in the same process starts clean
    assert interrupt.STATE == {"seen": False, "pending": False}


def test_an_interrupted_exit_does_not_wait_for_a_stuck_thread(tmp_path):
    """``__main__.leave_stuck_threads``: a non-daemon thread blocked on a lock nobody will release (what an
    interrupt inside ``Condition.__enter__`` leaves behind) would make Python's exit join it for ever; after
    Ctrl-C the process leaves with 130 once the grace has passed, its output flushed."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    code = (
        "import sys, threading\n"
        "from simcluster.__main__ import leave_stuck_threads\n"
        "lock = threading.Lock(); lock.acquire()\n"
        "threading.Thread(target=lock.acquire).start()  # never returns\n"
        "print('before', flush=False)\n"
        "leave_stuck_threads(grace_s=0.3)\n"
        "sys.exit(0)  # not reached\n"
    )
    t0 = time.monotonic()
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(root)},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 130 and run.stdout == "before\n"
    assert time.monotonic() - t0 < 30


def test_an_interrupted_exit_waits_for_threads_that_end():
    """With every other thread ending within the grace, ``leave_stuck_threads`` returns and the normal exit runs."""
    import threading
    import time

    from simcluster.__main__ import leave_stuck_threads

    t = threading.Thread(target=time.sleep, args=(0.05,))
    t.start()
    leave_stuck_threads(grace_s=5.0)  # returns: the thread ended
    assert not t.is_alive()


def test_ctrl_c_is_held_back_inside_a_locks_enter_and_exit():
    """A Condition's ``__enter__`` returns after its lock is taken: an interrupt raised there (or in ``__exit__``
    before the release) leaves the lock held. Those frames are re-checked later; a wait inside the ``with`` is not."""
    import sys
    import threading
    from types import SimpleNamespace

    from simcluster import interrupt

    seen = []

    def profile(frame, event, arg):
        if event == "call" and frame.f_code.co_name in ("__enter__", "__exit__") and "threading" in \
                frame.f_code.co_filename:
            seen.append(interrupt._in_lock_handoff(frame))

    cond = threading.Condition()
    sys.setprofile(profile)
    try:
        with cond:
            pass
    finally:
        sys.setprofile(None)
    assert seen == [True, True]  # threading.Condition.__enter__ and __exit__, as the interpreter runs them

    def fake(name: str, filename: str) -> SimpleNamespace:
        return SimpleNamespace(f_code=SimpleNamespace(co_name=name, co_filename=filename), f_back=None)
    assert interrupt._in_lock_handoff(fake("__enter__", "/usr/lib/python3.11/concurrent/futures/_base.py"))
    assert interrupt._in_lock_handoff(fake("__exit__", "/usr/lib/python3.11/multiprocessing/synchronize.py"))
    assert not interrupt._in_lock_handoff(fake("wait", "/usr/lib/python3.11/threading.py"))  # waits stay prompt
    assert not interrupt._in_lock_handoff(fake("__enter__", "/work/simcluster/sweep/store.py"))
    assert not interrupt._in_lock_handoff(None)


def test_threads_alive_before_the_command_are_not_waited_for():
    """``entry`` run in-process (a test runner, a notebook) passes the threads it found to ``leave_stuck_threads``:
    a host's long-lived non-daemon thread neither delays the exit nor ends the host."""
    import threading
    import time

    from simcluster.__main__ import leave_stuck_threads

    stop = threading.Event()
    host = threading.Thread(target=stop.wait)  # a host's idle worker, not the command's
    host.start()
    try:
        t0 = time.monotonic()
        leave_stuck_threads(grace_s=2.0, ignore=set(threading.enumerate()))  # returns at once: nothing to wait for
        assert time.monotonic() - t0 < 1.0
    finally:
        stop.set()
        host.join()
