"""``python -m simcluster``: the command line."""

import sys

from simcluster.cli import main

if __name__ == "__main__":
    sys.exit(main())
