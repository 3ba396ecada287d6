"""The sweep's progress bar: done/total, ok/invalid/error counts and an ETA (tqdm).

Drawn on stderr only when stderr is a terminal (or when asked), so logs and CI output
stay clean; points found in the store count as done from the start and do not distort
the rate (tqdm's ``initial``).
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

from tqdm import tqdm

STATUSES = ("ok", "invalid", "error")


class Progress:
    """Counts of finished points by status, shown as a tqdm bar when enabled."""

    def __init__(self, name: str, total: int, already: Counter[str] | None = None, enabled: bool | None = None):
        self.counts: Counter[str] = Counter(already or {})
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.bar: Any = tqdm(total=total, initial=sum(self.counts.values()), desc=name, unit="pt",
                             disable=not self.enabled, file=sys.stderr, dynamic_ncols=True, smoothing=0.1)
        self._postfix(refresh=True)

    def _postfix(self, refresh: bool = False) -> None:
        if self.enabled:
            self.bar.set_postfix_str(" ".join(f"{s}={self.counts[s]}" for s in STATUSES), refresh=refresh)

    def update(self, status: str, n: int = 1) -> None:
        """``n`` more points finished with ``status``."""
        self.counts[status] += n
        self._postfix()
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
