"""``python -m simcluster``: the command line."""

import signal
import sys

if __name__ == "__main__":
    try:
        from simcluster.cli import main

        code = main()
    except KeyboardInterrupt:  # Ctrl-C while importing, before the commands handle it themselves
        print("\nsimcluster: interrupted", file=sys.stderr)
        code = 130
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # done: a late Ctrl-C must not break the exit
    sys.exit(code)
