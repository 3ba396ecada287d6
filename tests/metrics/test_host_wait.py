"""Host work (phase ``host``: DeepSpeed ZeRO-3's per-rank loops around its list-based collectives) is GPU
idle time: out of compute and ``compute_utilization``, reported as ``host_wait`` / ``host_wait_fraction``,
drawn and traced as what it is (simcluster.metrics.summary, simcluster.reporting)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from helpers_spec import make_spec
from simcluster.metrics.intervals import measure, merge
from simcluster.plan.steps import HOST_PHASE
from simcluster.reporting import write_run
from simcluster.reporting.kineto import HOST_PID
from simcluster.reporting.shares import gpu_arrays, rank_segments, summary_buckets, totals
from simcluster.reporting.utilization import compute_utilization_matrix
from simcluster.run import simulate_workload

#: ZeRO-3 over 64 ranks on 8 nodes: the per-rank loops are a visible share of the step.
ZERO3 = ("parallelism.data=64", "cluster.nodes=8", "parallelism.zero_stage=3", "training.recompute=full",
         "training.framework=deepspeed", "training.global_batch=64")
FRACTIONS = ("compute_utilization", "bubble_fraction", "exposed_comm_fraction", "host_wait_fraction")


@pytest.fixture(scope="module")
def deepspeed_zero3(tmp_path_factory):
    spec = make_spec(tmp_path_factory.mktemp("zero3"), *ZERO3)
    return spec, simulate_workload(spec)


def _rows(out, rank: int, host: bool):
    tl = out.result.timeline
    rows = tl[(tl["rank"] == rank) & (tl["stream"] == "compute")]
    return rows[(rows["phase"] == HOST_PHASE) == host]


def test_host_work_is_out_of_compute(deepspeed_zero3):
    """host_wait is the host rows' time; compute_utilization the other compute rows' union; the four fractions
    add up to the iteration."""
    _, out = deepspeed_zero3
    s, T = out.summary, out.summary["iteration_time_s"]
    rank = out.details["ranks"][0]["rank"]
    host, busy = _rows(out, rank, True), _rows(out, rank, False)
    assert set(host["task"].str.split(" ").str[0]) == {"zero.prep", "zero.persist_gather"}
    host_s = measure(merge(zip(host["start_s"], host["end_s"])))
    assert host_s > 0.05 * T
    assert s["host_wait_fraction"] == pytest.approx(host_s / T, rel=1e-9)
    assert s["compute_utilization"] == pytest.approx(measure(merge(zip(busy["start_s"], busy["end_s"]))) / T,
                                                     rel=1e-9)
    assert sum(s[k] for k in FRACTIONS) == pytest.approx(1.0, abs=1e-9)
    b = out.details["breakdown"][0]
    assert b["host_wait"] == pytest.approx(host_s, rel=1e-9)
    parts = ("compute", "recompute", "optimizer", "moe_imbalance", "host_wait", "bubble",
             "exposed_tp_comm", "exposed_ep_comm", "exposed_pp_comm", "exposed_dp_comm")
    assert sum(b[k] for k in parts) == pytest.approx(T, rel=1e-9)
    warned = [w for w in out.details["warnings"] if w.startswith("host wait is")]
    assert bool(warned) == (s["host_wait_fraction"] > 0.2)


def test_no_host_rows_no_host_wait(tmp_path):
    """FSDP (``pytorch``) gathers with one flat collective: no host rows, host_wait_fraction 0."""
    out = simulate_workload(make_spec(tmp_path, *ZERO3[:-2], "training.framework=pytorch", ZERO3[-1]))
    assert out.summary["host_wait_fraction"] == 0.0
    assert not (out.result.timeline["phase"] == HOST_PHASE).any()
    assert sum(out.summary[k] for k in FRACTIONS) == pytest.approx(1.0, abs=1e-9)


def test_drawn_states_and_utilization_agree(deepspeed_zero3):
    """The Gantt chart's compute states give the breakdown's host_wait; the utilization heat map's mean is
    compute_utilization (host work not busy)."""
    _, out = deepspeed_zero3
    tl, T = out.result.timeline, out.summary["iteration_time_s"]
    rank = out.details["ranks"][0]["rank"]
    arrays = gpu_arrays(tl)
    seg = rank_segments(*arrays.of(rank), 0.0, T, arrays.waits_of(rank))
    buckets = summary_buckets(totals(seg))
    b = out.details["breakdown"][0]
    assert buckets["host_wait"] == pytest.approx(b["host_wait"], rel=1e-9)
    assert buckets["compute"] == pytest.approx(b["compute"], rel=1e-6)
    edges = np.linspace(0.0, T, 401)
    util = compute_utilization_matrix(tl, [rank], edges, arrays)
    assert float(util.mean()) == pytest.approx(out.summary["compute_utilization"], rel=1e-9)


def _load(path: Path) -> dict:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return json.loads(raw)


def test_kineto_puts_host_work_on_the_host_thread(deepspeed_zero3, tmp_path):
    """Host work is a CPU operator on the python main thread, never a kernel; with HolisticTraceAnalysis
    installed its temporal breakdown counts it as idle and finds compute_utilization."""
    spec, out = deepspeed_zero3
    write_run(tmp_path, out.result.timeline, out.summary, spec.resolved_dict(), out.details, outputs=["trace"],
              trace_scope="full")
    files = sorted((tmp_path / "traces").glob("rank*.json*"))
    assert files
    events = _load(files[0])["traceEvents"]
    kernels = [e for e in events if e.get("cat") == "kernel"]
    cpu = [e for e in events if e.get("cat") == "cpu_op"]
    assert not any(e["name"].startswith("zero.prep") or e["name"].startswith("zero.persist") for e in kernels)
    assert cpu and all(e["pid"] >= HOST_PID and e["tid"] == 1 for e in cpu)
    rank = out.details["ranks"][0]["rank"]
    host_s = measure(merge(zip(*(_rows(out, rank, True)[c] for c in ("start_s", "end_s")))))
    assert sum(e["dur"] for e in cpu) / 1e6 == pytest.approx(host_s, rel=1e-6)
    try:
        from hta.trace_analysis import TraceAnalysis
    except ImportError:
        pytest.skip("HolisticTraceAnalysis is not installed (the optional extra simcluster[analysis])")
    analysis = TraceAnalysis(trace_dir=str(tmp_path / "traces"))
    tb = analysis.get_temporal_breakdown(visualize=False)
    s = out.summary
    assert abs(tb["compute_time_pctg"].mean() - 100 * s["compute_utilization"]) <= 1.0
    assert tb["idle_time_pctg"].mean() >= 100 * s["host_wait_fraction"] - 1.0
    # the kernels' launches: HTA's idle breakdown calls the compute stream's gaps around host work "host wait",
    # at least the host work and at most it with the communication waited on after it
    idle = analysis.get_idle_time_breakdown(visualize=False)
    idle = idle[0] if isinstance(idle, tuple) else idle
    on7 = idle[idle["stream"] == 7].set_index("idle_category")["idle_time"]
    T_us = s["iteration_time_s"] * 1e6
    assert 100 * s["host_wait_fraction"] - 1.0 <= 100 * on7.get("host_wait", 0.0) / T_us
    assert 100 * on7.get("host_wait", 0.0) / T_us <= 100 * (s["host_wait_fraction"] + s["exposed_comm_fraction"]) + 1.0


def test_every_kernel_has_its_launch_before_it(deepspeed_zero3, tmp_path):
    """One cuda_runtime launch per kernel, same correlation, on the host thread, at or before the kernel and never
    inside host work; a kernel right after host work is launched when that work ends."""
    spec, out = deepspeed_zero3
    write_run(tmp_path, out.result.timeline, out.summary, spec.resolved_dict(), out.details, outputs=["trace"],
              trace_scope="full")
    events = _load(sorted((tmp_path / "traces").glob("rank*.json*"))[0])["traceEvents"]
    kernels = {e["args"]["correlation"]: e for e in events if e.get("cat") == "kernel"}
    launches = {e["args"]["correlation"]: e for e in events if e.get("cat") == "cuda_runtime"}
    assert kernels and set(kernels) == set(launches)
    assert all(launches[c]["ts"] <= k["ts"] and launches[c]["pid"] >= HOST_PID and launches[c]["tid"] == 1
               for c, k in kernels.items())
    host = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("cat") == "cpu_op")
    assert not any(a < launches[c]["ts"] < b for c in launches for a, b in host)
    compute = sorted((k["ts"], c) for c, k in kernels.items() if k["tid"] == 7)
    after = [c for (t, c), (t0, _) in zip(compute[1:], compute[:-1]) if any(t0 < b <= t for _, b in host)]
    assert after and all(any(abs(launches[c]["ts"] - b) < 1e-3 for _, b in host) for c in after)
