"""MLCommons Chakra execution traces (the input format of ASTRA-sim): export and re-import.

Optional: needs the ``simcluster[chakra]`` extra (``mlc-chakra``, for its protobuf schema,
and ``protobuf``; ``pip install --no-deps mlc-chakra protobuf`` avoids mlc-chakra's
trace-analysis dependencies, which the schema does not need).

>>> from simcluster.chakra import export_chakra, run_traces
>>> export_chakra(spec, "traces/")             # traces/<name>.<rank>.et, one per simulated rank
>>> outcome = run_traces("traces/", "reports/x")   # simulate them, write the usual reports

``python -m simcluster export-chakra WORKLOAD.yaml DIR`` does the first.
See :mod:`simcluster.chakra.export` for what a node carries.
"""

from __future__ import annotations


def have_chakra() -> bool:
    """Whether the Chakra schema (``mlc-chakra`` with ``protobuf``) can be imported."""
    try:
        from simcluster.chakra.protocol import pb  # noqa: F401
    except ImportError:
        return False
    return True


def export_chakra(*args, **kwargs):
    """See :func:`simcluster.chakra.export.export_chakra`."""
    from simcluster.chakra.export import export_chakra as f

    return f(*args, **kwargs)


def load_traces(*args, **kwargs):
    """See :func:`simcluster.chakra.load.load_traces`."""
    from simcluster.chakra.load import load_traces as f

    return f(*args, **kwargs)


def simulate_traces(*args, **kwargs):
    """See :func:`simcluster.chakra.load.simulate_traces`."""
    from simcluster.chakra.load import simulate_traces as f

    return f(*args, **kwargs)


def run_traces(*args, **kwargs):
    """See :func:`simcluster.chakra.load.run_traces`."""
    from simcluster.chakra.load import run_traces as f

    return f(*args, **kwargs)


def is_trace_dir(path) -> bool:
    """Whether ``path`` is a folder holding ``.et`` files (what ``run`` accepts instead of a YAML file)."""
    from pathlib import Path

    p = Path(path)
    return p.is_dir() and any(p.glob("*.et"))


__all__ = ["have_chakra", "export_chakra", "load_traces", "simulate_traces", "run_traces", "is_trace_dir"]
