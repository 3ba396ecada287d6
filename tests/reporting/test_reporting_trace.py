"""trace.json follows the Chrome trace event format."""

from __future__ import annotations

import json
from collections import defaultdict

from simcluster.reporting.trace import build_trace

TOL_US = 1e-6


def _load(written_run):
    return json.loads((written_run[0] / "trace.json").read_text())


def test_top_level(written_run):
    trace = _load(written_run)
    assert trace["displayTimeUnit"] == "ms"
    assert isinstance(trace["traceEvents"], list) and trace["traceEvents"]


def test_required_fields_and_units(written_run):
    tl = written_run[1][0]
    events = _load(written_run)["traceEvents"]
    xs = [e for e in events if e["ph"] == "X"]
    assert len(xs) == len(tl)  # every interval, GPU and link, once
    for e in xs:
        for key in ("name", "cat", "ph", "ts", "dur", "pid", "tid", "args"):
            assert key in e, (key, e)
        assert isinstance(e["ts"], (int, float)) and isinstance(e["dur"], (int, float))
        assert e["ts"] >= 0 and e["dur"] >= 0
        wanted = ("bytes",) if e["cat"] == "link" else ("layer", "microbatch", "stage", "flops", "bytes", "kind")
        for key in wanted:
            assert key in e["args"], (key, e)
    # microseconds: the last event ends at the iteration's end
    end_us = max(e["ts"] + e["dur"] for e in xs)
    assert abs(end_us - tl["end_s"].max() * 1e6) < 1e-3
    first = min(xs, key=lambda e: (e["ts"], e["pid"], e["tid"]))
    assert first["ts"] == 0.0


def test_metadata_names_every_process_and_thread(written_run):
    events = _load(written_run)["traceEvents"]
    procs = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert "network" in procs.values()
    assert any("stage 1" in name for name in procs.values())
    for e in events:
        if e["ph"] == "X":
            assert e["pid"] in procs and (e["pid"], e["tid"]) in threads
    assert {"compute", "tp", "dp", "pp-fwd", "pp-bwd"} <= set(threads.values())


def test_no_partial_overlap_on_a_thread(written_run):
    events = _load(written_run)["traceEvents"]
    by_thread = defaultdict(list)
    for e in events:
        if e["ph"] == "X":
            by_thread[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
    for spans in by_thread.values():
        spans.sort()
        for (s0, e0), (s1, e1) in zip(spans, spans[1:]):
            nested = s1 >= s0 and e1 <= e0 + TOL_US
            assert s1 >= e0 - TOL_US or nested, (s0, e0, s1, e1)


def test_flows_and_counters(written_run):
    events = _load(written_run)["traceEvents"]
    starts = {e["id"]: e for e in events if e["ph"] == "s"}
    ends = {e["id"]: e for e in events if e["ph"] == "f"}
    assert starts and starts.keys() == ends.keys()
    for i, s in starts.items():
        assert ends[i]["ts"] >= s["ts"]
        assert ends[i]["pid"] != s["pid"]
    counters = [e for e in events if e["ph"] == "C"]
    busy = [v for e in counters for k, v in e["args"].items() if k == "busy %"]
    assert counters and busy and all(0 <= v <= 100 for v in busy)
    assert all(v >= 0 for e in counters for v in e["args"].values())
    assert any(e["name"] == "ib link utilization" for e in counters)  # GB/s: no capacities known here


def test_deterministic_dict(run_inputs):
    a = json.dumps(build_trace(*run_inputs), sort_keys=True)
    b = json.dumps(build_trace(*run_inputs), sort_keys=True)
    assert a == b
