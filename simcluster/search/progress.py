"""The screening's progress: layouts estimated so far and the rate (tqdm, on a terminal only).

The size of the space is not known before it is walked (validity prunes it as it goes), so
the bar counts up without a total; the simulations that follow use the sweep's own bar.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator

from tqdm import tqdm


@contextmanager
def screening_bar(name: str, enabled: bool | None = None) -> Iterator[Callable[[int], None]]:
    """A callable that advances the bar by n layouts; drawn on stderr when it is a terminal."""
    show = sys.stderr.isatty() if enabled is None else enabled
    bar = tqdm(desc=f"{name}: screening", unit=" layouts", unit_scale=True, disable=not show, file=sys.stderr,
               dynamic_ncols=True)
    try:
        yield bar.update
    finally:
        bar.close()
