"""``python -m simcluster`` and the ``simcluster`` console script: the command line."""

import signal
import sys


def entry() -> None:
    """Run the command line and exit with its status (the console script ``simcluster``)."""
    try:
        from simcluster.cli import main

        code = main()
    except KeyboardInterrupt:  # Ctrl-C while importing, before the commands handle it themselves
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("\nsimcluster: interrupted", file=sys.stderr)
        code = 130
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # done: a late Ctrl-C must not break the exit
    sys.exit(code)


if __name__ == "__main__":
    entry()
