"""Everything a run writes to disk: JSON figures, the timeline, plots, a Chrome trace and an HTML page.

Only this package imports matplotlib (Agg backend).

>>> from simcluster.reporting import write_run, redraw, print_summary
>>> write_run(run_dir, timeline, summary, config, details)   # after a simulation
>>> redraw(run_dir)                                           # `python -m simcluster report RUN_DIR`
>>> print(print_summary(summary, config))                     # the terminal table
"""

from simcluster.reporting.files import read_timeline, redraw, write_run
from simcluster.reporting.text import print_summary

write_report = write_run  # the name docs/architecture.md uses

__all__ = ["write_run", "write_report", "redraw", "print_summary", "read_timeline"]
