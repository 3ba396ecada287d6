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
