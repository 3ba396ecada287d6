"""``python -m simcluster`` and the ``simcluster`` console script: the command line."""

import sys

import simcluster.interrupt as interrupt


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
    sys.exit(code)


def quiet_unraisable() -> None:
    """After Ctrl-C, let nothing print a traceback on the way out: Python 3.11's ``concurrent.futures`` exit hook
    may wake the interrupted process pool's management thread through a pipe already closed ("Exception ignored
    in: <module 'threading'> ... OSError: [Errno 9] Bad file descriptor", ``_ThreadWakeup.wakeup`` without the
    closed check 3.12 added). Such exceptions reach ``sys.unraisablehook`` only; the interrupt was already
    reported and the finished points kept."""
    sys.unraisablehook = lambda unraisable: None


if __name__ == "__main__":
    entry()
