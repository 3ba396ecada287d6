"""Everything a run writes to disk: JSON figures, the timeline, plots, traces and an HTML page.

Only this package imports matplotlib (Agg backend). Modules: ``files`` (what a run writes,
``outputs`` selection, redraw), ``shares`` + ``raster`` + ``gantt`` (the Gantt chart drawn by
each state's share of every pixel column), ``schedule`` (the paper-style schedule view),
``utilization`` + ``breakdown`` + ``bins``, ``memory``, ``trace`` (the Perfetto overview),
``kineto`` + ``tracefmt`` (one Kineto trace per rank), ``html``, ``theory`` (closed forms),
``schedule_compare`` (a sweep's schedules side by side), ``sweep_plots``, ``search_plots``.

>>> from simcluster.reporting import write_run, redraw, print_summary
>>> write_run(run_dir, timeline, summary, config, details)   # after a simulation
>>> write_run(run_dir, ..., outputs=["summary", "plots"])     # only some of it
>>> redraw(run_dir)                                           # `python -m simcluster report RUN_DIR`
>>> redraw(run_dir, window=(10.0, 20.0))                      # gantt-10-20.png beside gantt.png
>>> print(print_summary(summary, config))                     # the terminal table
"""

from simcluster.reporting.files import OUTPUTS, read_timeline, redraw, write_run
from simcluster.reporting.text import print_summary

write_report = write_run  # the name docs/architecture.md uses

__all__ = ["write_run", "write_report", "redraw", "print_summary", "read_timeline", "OUTPUTS"]
