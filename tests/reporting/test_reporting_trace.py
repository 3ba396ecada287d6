"""trace.json (the Perfetto overview) follows the Chrome trace event format."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

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
    assert len(xs) == int((tl["rank"] >= 0).sum())  # every GPU interval once; links are counters
    for e in xs:
        for key in ("name", "cat", "ph", "ts", "dur", "pid", "tid", "args"):
            assert key in e, (key, e)
        assert isinstance(e["ts"], (int, float)) and isinstance(e["dur"], (int, float))
        assert e["ts"] >= 0 and e["dur"] >= 0
        for key in ("layer", "microbatch", "stage", "flops", "bytes", "kind"):
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
    assert "network (link utilization)" in procs.values()
    ranks = {e["pid"] for e in events if e["ph"] == "X"}
    net = next(pid for pid, name in procs.items() if name.startswith("network"))
    assert net not in ranks and net > 256  # above every real rank of the world (256 GPUs): no collision
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
    links = [e for e in counters if e["name"].endswith("(ib)")]
    assert links and all(set(e["args"]) == {"GB/s"} for e in links)  # no capacities known here: GB/s
    # the link counters carry the bytes: their integral over time is what the links carried
    tl = written_run[1][0]
    by_link: dict = defaultdict(list)
    for e in links:
        by_link[e["name"]].append((e["ts"], e["args"]["GB/s"]))
    carried = 0.0
    for samples in by_link.values():
        samples.sort()
        carried += sum((b[0] - a[0]) * 1e-6 * a[1] * 1e9 for a, b in zip(samples, samples[1:]))
    ib = tl[tl["resource"].astype(str).str.startswith("link:ib")]
    assert carried == pytest.approx(float(ib["bytes"].sum()), rel=0.02)


def test_deterministic_dict(run_inputs):
    a = json.dumps(build_trace(*run_inputs), sort_keys=True)
    b = json.dumps(build_trace(*run_inputs), sort_keys=True)
    assert a == b


def test_bounded_by_default(run_inputs, monkeypatch):
    """Past the budget the overview holds the iteration's first part and says so; ``full`` holds all."""
    import simcluster.reporting.trace as trace

    monkeypatch.setattr(trace, "BUDGET", 20)
    tl = run_inputs[0]
    bounded = build_trace(*run_inputs)
    other = bounded["otherData"]
    t0, t1 = other["window_s"]
    assert t0 == 0 and t1 < tl["end_s"].max() and "first" in other["bounded"] and "full" in other["bounded"]
    xs = [e for e in bounded["traceEvents"] if e["ph"] == "X"]
    assert 0 < len(xs) <= 20 + 4 and all(e["ts"] < t1 * 1e6 + 1e-3 for e in xs)
    full = build_trace(*run_inputs, scope="full")
    assert full["otherData"]["bounded"] == "the whole iteration"
    assert len([e for e in full["traceEvents"] if e["ph"] == "X"]) == int((tl["rank"] >= 0).sum())
