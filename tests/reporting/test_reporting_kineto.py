"""traces/rank<N>.json: Kineto-style traces analysis tools read.

The structure is checked on a small real run; HolisticTraceAnalysis (the optional extra
``simcluster[analysis]``: ``pip install --no-deps holistictraceanalysis plotly narwhals psutil``)
reads the traces of GPT-3 175B and must find the summary's figures within one point.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from simcluster.metrics.intervals import intersect, measure, merge
from simcluster.metrics.summary import _breakdown
from simcluster.reporting import write_run
from simcluster.reporting.kineto import HOST_PID
from simcluster.run import simulate_workload
from simcluster.spec import load_workload

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "workloads" / "toy-8gpu.yaml"
GPT3 = ROOT / "workloads" / "gpt3-175b.yaml"
PP4 = ["parallelism.pipeline=4", "parallelism.tensor=2", "parallelism.data=1", "training.global_batch=16",
       "training.micro_batch=1", "training.recompute=full"]


def _load(path: Path) -> dict:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return json.loads(raw)


@pytest.fixture(scope="module")
def toy_traces(tmp_path_factory):
    spec = load_workload(TOY, overrides=PP4)
    out = simulate_workload(spec)
    d = tmp_path_factory.mktemp("kineto")
    write_run(d, out.result.timeline, out.summary, spec.resolved_dict(), out.details, outputs=["trace"])
    return d, out


def test_one_trace_per_rank_with_its_rank(toy_traces):
    d, out = toy_traces
    files = sorted((d / "traces").iterdir())
    ranks = [r["rank"] for r in out.details["ranks"]]
    assert sorted(f.name for f in files) == sorted(f"rank{r}.json" for r in ranks)
    for f in files:
        trace = _load(f)
        info = trace["distributedInfo"]
        assert info["rank"] == int(f.name[4:].split(".")[0]) and info["world_size"] == out.summary["num_gpus"]
        # HolisticTraceAnalysis finds the rank by this pattern in the file's first lines
        head = f.read_text().splitlines()[:4]
        assert any(re.search(r'"rank":\s+(\d+)', line) for line in head)
        assert trace["simcluster"]["bounded"] == "the whole iteration"


def test_nested_slices_and_kernels(toy_traces):
    """ProfilerStep → microbatch pass → layer → kernel on the compute stream, each inside its parent;
    no partial overlaps on a thread; host and GPU pids apart."""
    d, out = toy_traces
    trace = _load(d / "traces" / f"rank{out.details['ranks'][1]['rank']}.json")
    xs = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    host = [e for e in xs if e["pid"] >= HOST_PID]
    assert [e["name"] for e in host if e["cat"] != "cuda_runtime"] == ["ProfilerStep#0"]
    assert host[0]["cat"] == "user_annotation"
    launches = [e for e in host if e["cat"] == "cuda_runtime"]  # one per kernel, inside the step, at or before it
    assert {e["name"] for e in launches} == {"cudaLaunchKernel"}
    assert len(launches) == sum(e["cat"] == "kernel" for e in xs)
    assert all(host[0]["ts"] <= e["ts"] <= host[0]["ts"] + host[0]["dur"] for e in launches)
    gpu_pids = {e["pid"] for e in xs if e["pid"] < HOST_PID}
    assert len(gpu_pids) == 1
    compute = [e for e in xs if e["tid"] == 7 and e["pid"] in gpu_pids]
    step = [e for e in compute if e["name"] == "ProfilerStep#0"]
    passes = [e for e in compute if e["cat"] == "gpu_user_annotation" and " mb" in e["name"]]
    layers = [e for e in compute if e["cat"] == "gpu_user_annotation" and e["name"].startswith(("layer", "embedding"))]
    kernels = [e for e in compute if e["cat"] == "kernel" and not e["name"].startswith("simcluster:")]
    assert len(step) == 1 and passes and layers and kernels
    assert {p["name"].split()[0] for p in passes} == {"forward", "backward"}
    m = out.summary["microbatches"]
    assert sum(p["name"].startswith("forward") for p in passes) == m

    def inside(child, parents):
        return any(p["ts"] - 1e-3 <= child["ts"] and child["ts"] + child["dur"] <= p["ts"] + p["dur"] + 1e-3
                   for p in parents)

    for k in kernels:
        if k["args"]["microbatch"] >= 0:
            assert inside(k, layers), k
        assert inside(k, step)
        for key in ("device", "stream", "correlation", "External id"):
            assert key in k["args"]
    assert all(inside(ly, passes) for ly in layers)
    assert all(inside(p, step) for p in passes)
    by_thread = defaultdict(list)
    for e in xs:
        by_thread[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
    for spans in by_thread.values():
        spans.sort(key=lambda x: (x[0], -x[1]))
        stack: list[float] = []
        for s, e in spans:  # each slice either nests in the open one or starts after it
            while stack and s >= stack[-1] - 1e-3:
                stack.pop()
            assert not stack or e <= stack[-1] + 1e-3, (s, e, stack[-1])
            stack.append(e)


def test_nccl_kernels_say_what_they_are(toy_traces):
    d, out = toy_traces
    trace = _load(d / "traces" / "rank0.json")
    nccl = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["name"].startswith("ncclDevKernel_")]
    assert nccl and all(e["cat"] == "kernel" for e in nccl)
    names = {e["args"]["Process Group Name"] for e in nccl}
    assert {"tp", "pp"} <= names
    tp = next(e for e in nccl if e["args"]["Process Group Name"] == "tp")
    assert tp["args"]["Collective name"] == "allreduce" and tp["args"]["Group size"] == 2
    assert tp["args"]["Process Group Ranks"] == [0, 1] and tp["args"]["In msg nelems"] > 0
    assert tp["args"]["dtype"] == "BFloat16" and tp["args"]["bytes"] > 0
    pp = next(e for e in nccl if e["args"]["Process Group Name"] == "pp")
    assert pp["name"].startswith("ncclDevKernel_SendRecv") and len(pp["args"]["Process Group Ranks"]) == 2


def test_gzip_past_the_threshold_and_stale_files_go(toy_traces, monkeypatch, tmp_path):
    import simcluster.reporting.kineto as kineto

    d, out = toy_traces
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / "rank999.json").write_text("{}")
    (tmp_path / "traces" / "notes.txt").write_text("mine")
    monkeypatch.setattr(kineto, "GZIP_TOTAL", 1000)
    write_run(tmp_path, out.result.timeline, out.summary, {"name": "toy", **{}}, out.details, outputs=["trace"])
    names = sorted(p.name for p in (tmp_path / "traces").iterdir())
    assert "rank999.json" not in names and "notes.txt" in names
    assert all(n.endswith(".json.gz") for n in names if n.startswith("rank"))
    assert _load(tmp_path / "traces" / "rank0.json.gz")["distributedInfo"]["rank"] == 0


# --- HolisticTraceAnalysis ------------------------------------------------------------------

def _hta():
    try:
        from hta.trace_analysis import TraceAnalysis
    except ImportError as e:  # noqa: F841
        pytest.skip("HolisticTraceAnalysis is not installed (the optional extra simcluster[analysis]: "
                    "pip install --no-deps holistictraceanalysis plotly narwhals psutil)")
    return TraceAnalysis


@pytest.fixture(scope="module")
def gpt3_traces(tmp_path_factory):
    _hta()
    spec = load_workload(GPT3)
    out = simulate_workload(spec)
    d = tmp_path_factory.mktemp("gpt3-traces")
    # the whole iteration: the default bounds a trace this size to its first part
    write_run(d, out.result.timeline, out.summary, spec.resolved_dict(), out.details, outputs=["trace"],
              trace_scope="full")
    return d, out


def test_hta_temporal_breakdown_agrees_with_the_summary(gpt3_traces):
    """GPT-3 175B: HTA's idle, compute and non-compute shares are, within one point, the compute
    utilization, and the bubble and exposed communication counted as a kernel-level profile counts
    them (communication kernels running while nothing computes); the summary charges idle time by
    what held the compute back instead, which moves time between the two but not their sum."""
    d, out = gpt3_traces
    analysis = _hta()(trace_dir=str(d / "traces"))
    tb = analysis.get_temporal_breakdown(visualize=False)
    assert len(tb) == out.summary["simulated_ranks"]
    s = out.summary
    gpu = out.result.timeline[out.result.timeline["rank"] >= 0]
    T = s["iteration_time_s"]
    kernels = _breakdown(gpu, T, causal=False)
    exposed = sum(sum(b[f"exposed_{k}_comm"] for k in ("tp", "ep", "pp", "dp")) for b in kernels) / len(kernels) / T
    bubble = sum(b["bubble"] for b in kernels) / len(kernels) / T
    assert abs(tb["idle_time_pctg"].mean() - 100 * bubble) <= 1.0
    assert abs(tb["compute_time_pctg"].mean() - 100 * s["compute_utilization"]) <= 1.0
    assert abs(tb["non_compute_time_pctg"].mean() - 100 * exposed) <= 1.0
    assert s["bubble_fraction"] + s["exposed_comm_fraction"] == pytest.approx(bubble + exposed, abs=1e-9)
    # idle time breakdown: the compute stream of the first rank idles for 1 − its utilization
    idle, _ = analysis.get_idle_time_breakdown(visualize=False)  # rank 0
    compute_idle = idle[idle["stream"] == 7]["idle_time"].sum()
    rank0 = tb[tb["rank"] == 0].iloc[0]
    busy = next(b for b in out.details["breakdown"] if b["stage"] == 0)
    util0 = (busy["compute"] + busy["recompute"] + busy["optimizer"]) / s["iteration_time_s"]
    assert abs(compute_idle / rank0["kernel_time(us)"] - (1 - util0)) <= 0.01
    # comm/comp overlap: the share of communication time beside compute, per rank
    overlap = analysis.get_comm_comp_overlap(visualize=False)
    tl = out.result.timeline
    for rank, pct in zip(overlap["rank"], overlap["comp_comm_overlap_pctg"]):
        rows = tl[tl["rank"] == rank]
        comp = merge(zip(*(rows.loc[rows["stream"] == "compute", c] for c in ("start_s", "end_s"))))
        comm = merge(zip(*(rows.loc[rows["stream"] != "compute", c] for c in ("start_s", "end_s"))))
        assert abs(pct / 100 - measure(intersect(comp, comm)) / measure(comm)) <= 0.01, rank
