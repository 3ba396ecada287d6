"""Reports of real simulated runs: the breakdown adds up, the trace's structure and bounds,
the Gantt window beside the full chart, the memory curve.

Simulations are shared per module; GPT-3 175B on 1,024 GPUs takes ~20 s on 2 cores and is
simulated once for the breakdown and the trace-size checks.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from simcluster.reporting import write_run
from simcluster.reporting.files import normalize_timeline, read_json
from simcluster.reporting.gantt import parse_window
from simcluster.reporting.memory import STATIC, memory_over_time, stage_memory
from simcluster.reporting.trace import build_trace, write_trace
from simcluster.run import simulate_workload
from simcluster.spec import load_workload

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "workloads" / "toy-8gpu.yaml"
GPT3 = ROOT / "workloads" / "gpt3-175b.yaml"
PP4 = ["parallelism.pipeline=4", "parallelism.tensor=1", "parallelism.data=2", "training.global_batch=16",
       "training.micro_batch=1"]
VARIANTS = {
    "toy": (TOY, []),
    "pp4-1f1b": (TOY, PP4),
    "interleaved": (TOY, ["parallelism.schedule=interleaved", "parallelism.virtual_stages=2"]),
    "recompute": (TOY, ["training.recompute=full"]),
    "gpipe-zero1": (TOY, ["parallelism.schedule=gpipe", "parallelism.zero_stage=1"]),
}
BREAKDOWN = ("compute", "recompute", "exposed_tp_comm", "exposed_dp_comm", "exposed_pp_comm", "bubble", "optimizer")
TOL_US = 1e-6

_cache: dict[str, tuple] = {}


def _run(name: str) -> tuple:
    """``(timeline, summary, config, details)`` of a variant (or "gpt3"), simulated once."""
    if name not in _cache:
        path, overrides = (GPT3, []) if name == "gpt3" else VARIANTS[name]
        spec = load_workload(path, overrides=overrides)
        out = simulate_workload(spec)
        tl = normalize_timeline(out.result.timeline)
        _cache[name] = (tl, out.summary, spec.resolved_dict(), out.details)
    return _cache[name]


@pytest.mark.parametrize("name", list(VARIANTS) + ["gpt3"])
def test_breakdown_adds_up_to_the_iteration_time(name):
    tl, summary, _, details = _run(name)
    T = summary["iteration_time_s"]
    stages = details["breakdown"]
    assert len(stages) == summary.get("simulated_ranks", len(stages))
    gpu = tl[tl["rank"] >= 0]
    for b in stages:
        total = sum(float(b[k]) for k in BREAKDOWN)
        assert abs(total - T) <= 1e-3 * T, (name, b, T)
        assert all(float(b[k]) >= -1e-12 for k in BREAKDOWN), b
        # the busy part agrees with the timeline the Gantt chart draws
        rank = next(r["rank"] for r in details["ranks"] if r["stage"] == b["stage"])
        comp = gpu[(gpu["rank"] == rank) & (gpu["stream"] == "compute")]
        busy = float((comp["end_s"] - comp["start_s"]).sum())
        assert abs(busy - (b["compute"] + b["recompute"] + b["optimizer"])) <= 1e-3 * T, (name, b["stage"])
        if name == "recompute":
            assert b["recompute"] > 0


def test_toy_trace_structure():
    tl, summary, config, details = _run("toy")
    trace = json.loads(json.dumps(build_trace(tl, summary, config, details)))
    events = trace["traceEvents"]
    assert trace["displayTimeUnit"] == "ms" and trace["schemaVersion"] == 1
    assert trace["otherData"]["bounded"] == "the whole iteration" and "rank" not in trace["distributedInfo"]
    procs = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    xs = [e for e in events if e["ph"] == "X"]
    assert len(xs) == int((tl["rank"] >= 0).sum())  # every GPU interval; links are counters
    by_thread = defaultdict(list)
    for e in xs:
        for key in ("name", "cat", "ph", "ts", "dur", "pid", "tid", "args"):
            assert key in e
        assert isinstance(e["ts"], float) and e["ts"] >= 0 and e["dur"] >= 0
        assert e["pid"] in procs and (e["pid"], e["tid"]) in threads
        for key in ("layer", "microbatch", "flops", "bytes", "kind", "stage"):
            assert key in e["args"]
        if threads[(e["pid"], e["tid"])] in ("tp", "dp"):
            assert e["args"]["group"].startswith(threads[(e["pid"], e["tid"])] + " group: ranks ")
        by_thread[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
    # microseconds: the last GPU interval ends at the iteration's end
    assert abs(max(e["ts"] + e["dur"] for e in xs) - summary["iteration_time_s"] * 1e6) < 1e-2
    for spans in by_thread.values():  # no partial overlap within one thread
        spans.sort()
        for (s0, e0), (s1, e1) in zip(spans, spans[1:]):
            assert s1 >= e0 - TOL_US or e1 <= e0 + TOL_US, (s0, e0, s1, e1)
    # processes are GPUs named by the ranks they stand for, threads are streams; no pid collides
    assert any("ranks 0–3" in n for n in procs.values()) and "network (link utilization)" in procs.values()
    net = next(pid for pid, n in procs.items() if n.startswith("network"))
    assert net > summary["num_gpus"] - 1 and net not in {e["pid"] for e in xs}
    assert {"compute", "tp", "dp", "pp-fwd", "pp-bwd"} <= set(threads.values())
    tp = next(e for e in xs if threads[(e["pid"], e["tid"])] == "tp" and e["pid"] == 0)
    assert tp["args"]["group"] == "tp group: ranks 0–1"
    # flow arrows send -> compute on the neighbour stage, counters in percent of capacity
    starts = {e["id"]: e for e in events if e["ph"] == "s"}
    ends = {e["id"]: e for e in events if e["ph"] == "f"}
    assert starts and starts.keys() == ends.keys()
    assert all(ends[i]["ts"] >= s["ts"] and ends[i]["pid"] != s["pid"] for i, s in starts.items())
    counters = [e for e in events if e["ph"] == "C"]
    assert {e["pid"] for e in counters} == set(procs)  # every GPU, and the links on "network"
    gpu = [e for e in counters if e["pid"] != net]
    assert all(set(e["args"]) == {"busy %"} for e in gpu)
    links = [e for e in counters if e["pid"] == net]
    assert links and all(set(e["args"]) == {"% of capacity"} for e in links)  # capacities known
    assert all(0 <= v <= 100 + 1e-6 for e in counters for v in e["args"].values())
    assert any(e["name"].endswith("(nvlink)") for e in links)


def test_gpt3_trace_is_bounded_and_says_so(tmp_path):
    tl, summary, config, details = _run("gpt3")
    path = tmp_path / "trace.json"
    t0, t1, bounded = write_trace(path, tl, summary, config, details)
    size = path.stat().st_size
    assert size < 30e6, f"trace.json is {size / 1e6:.1f} MB"
    trace = json.loads(path.read_text())
    other = trace["otherData"]
    assert bounded and other["window_s"] == [t0, t1] and t1 < summary["iteration_time_s"]
    assert "first" in other["bounded"] and "trace_scope='full'" in other["bounded"]
    xs = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    gpu = tl[tl["rank"] >= 0]
    assert len(xs) == int((gpu["start_s"] < t1).sum())
    assert not [e for e in trace["traceEvents"] if e.get("cat") == "link"]  # links are counters now
    assert [e for e in trace["traceEvents"] if e["ph"] == "C" and "% of capacity" in e["args"]]


def test_gantt_window_from_the_command_line(tmp_path):
    from simcluster.cli import main
    from simcluster.runfolder import mark_complete

    tl, summary, config, details = _run("toy")
    write_run(tmp_path, tl, summary, config, details)
    mark_complete(tmp_path)
    full = (tmp_path / "gantt.png").read_bytes()
    page = (tmp_path / "report.html").read_bytes()
    T = summary["iteration_time_s"]

    def cli(*argv):
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            return main([str(a) for a in argv]), err.getvalue()

    rc, err = cli("report", tmp_path, "--window", f"{T / 4}:{T / 2}")
    assert rc == 0, err
    window = tmp_path / f"gantt-{T / 4:.6g}-{T / 2:.6g}.png"
    assert window.read_bytes()[:4] == b"\x89PNG" and window.read_bytes() != full
    assert (tmp_path / "gantt.png").read_bytes() == full and (tmp_path / "report.html").read_bytes() == page
    for bad in ("abc", "2:1", f"{2 * T}:{3 * T}"):
        rc, err = cli("report", tmp_path, "--window", bad)
        assert rc == 2 and "--window" in err and "Traceback" not in err, (bad, err)
    assert parse_window(":0.5") == (0.0, 0.5) and parse_window("0.25:")[0] == 0.25
    rc, _ = cli("report", tmp_path)
    assert rc == 0 and (tmp_path / "gantt.png").read_bytes() == full


@pytest.mark.parametrize("name", ["pp4-1f1b", "interleaved"])
def test_memory_curve_peaks_at_the_memory_model(name):
    tl, summary, config, details = _run(name)
    mem = {m["stage"]: m for m in stage_memory(details)}
    curves = memory_over_time(tl, details)
    assert set(curves) == set(mem)
    for stage, (t, b) in curves.items():
        static = sum(mem[stage][k] for k in STATIC)
        assert np.all(np.diff(t) >= 0)
        assert b.max() == pytest.approx(static + mem[stage]["activations"], rel=1e-9)
        assert b[-1] == pytest.approx(static, rel=1e-9)  # every activation freed by the end
        assert b.min() >= static - 1e-6


def test_real_run_writes_every_report(tmp_path):
    write_run(tmp_path, *_run("pp4-1f1b"))
    for name in ("gantt.png", "schedule.png", "utilization.png", "memory.png", "trace.json", "report.html"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert read_json(tmp_path / "details.json")["memory"]
