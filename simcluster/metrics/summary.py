"""The contract's summary figures and the per-stage time breakdown.

Per simulated rank, with T the iteration time (the last task's end):

- compute busy: the union of its compute-stream intervals (forward, backward,
  recompute, optimizer);
- exposed communication of a kind: time its compute stream idles waiting on a
  communication of that kind: the chain of tasks that held its next compute task back
  (:mod:`simcluster.metrics.waits`); where no chain says (inside a fused unit, after the
  last compute), the first busy kind in the order tensor/context-parallel, expert
  all-to-all (MoE), pipeline, data-parallel/ZeRO;
- bubble: what remains of T: idle waiting on another rank's compute (a pipeline
  neighbour's wave, a slower peer) or on nothing;
- moe_imbalance: compute-stream time a mixture of experts loses waiting for its slowest
  expert-parallel rank (:mod:`simcluster.plan.moe`), kept out of compute;
- host_wait: compute-stream tasks that are host work (phase ``host``,
  :data:`simcluster.plan.steps.HOST_PHASE`: DeepSpeed ZeRO-3's per-rank Python and launch
  loops around its list-based collectives, ``zero.prep`` and ``zero.persist_gather``; a step's
  batch loaded after a per-step sync, ``step.data_loading``, ``training.data_loading_wait``): the
  GPU runs nothing meanwhile, so they count neither as compute nor in
  ``compute_utilization`` (a kernel-level profile sees idle time there, the host holding
  the stream back: HolisticTraceAnalysis's "host wait").

These add up to T per stage. ``bubble_fraction``, ``exposed_comm_fraction``,
``host_wait_fraction`` and ``compute_utilization`` average them over the GPUs (the four add
up to 1): over the simulated ranks,
each weighted by the GPUs it stands for (all alike but in partial fidelity). Model FLOPs count the matrix multiplies without
recompute (Narayanan et al. 2021 eq. 3 with 72 instead of 96; Korthikanti et
al. 2022 eq. 7); hardware FLOPs include recomputed ones (ibid. eq. 8).

Every headline figure carries an interval (``*_interval``, ``[low, high]`` at
``interval_level``, 80 % by default) propagated from the uncertainty of the constants it
used: :mod:`simcluster.metrics.uncertainty` says how.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simcluster.costs.attention_kernels import run_calibration
from simcluster.costs.memory import OUTSIDE_ALLOCATOR_BYTES
from simcluster.costs.devices import device_calibration
from simcluster.engine.simulate import SimResult
from simcluster.lowering.task import TaskGraph
from simcluster.plan import Plan
from simcluster.plan.steps import HOST_PHASE
from simcluster.spec.workload import WorkloadSpec
from simcluster.topology.devices import Device
from simcluster.topology.topology import Topology

from simcluster.metrics import error_bars as eb
from simcluster.metrics import uncertainty as unc
from simcluster.metrics.intervals import attribute
from simcluster.metrics.waits import SUMMARY_KIND, WAIT_CLASSES, causal_waits

COMM_KINDS = (("tp", ("tp", "cp")), ("ep", ("ep",)), ("pp", ("pp-fwd", "pp-bwd")), ("dp", ("dp", "dp-edp")))

#: summary.json: counts, times, rates, fractions and bytes, whether the peak fits, and the
#: ``[low, high]`` intervals of the headline figures.
Summary = dict[str, float | int | bool | list[float]]
#: details.json: rank labels, per-stage memory and time breakdown, warnings, busiest links,
#: simulation counts (each key its own shape, see :func:`summarize`).
Details = dict[str, object]


def _breakdown(gpu: pd.DataFrame, T: float, causal: bool = True) -> list[dict[str, float]]:
    """Where each simulated rank's iteration goes (one dict per rank, by rank), from its rows.

    All ranks at once, by :func:`simcluster.metrics.intervals.attribute` over categories in
    this order: the compute stream's rows; its host-work rows (``host_wait``); the wait segments of
    :func:`simcluster.metrics.waits.causal_waits` (what the next compute task waited for,
    disjoint from each other and from compute; each counted for its own kind); the
    communication rows by :data:`COMM_KINDS`; the rest is bubble. So an idle instant counts
    for what held the compute back where the timeline says, and for the first busy kind
    elsewhere (inside a fused unit, after the last compute, in a timeline without ``released_by``). ``causal=False``: the first busy kind
    everywhere (what a kernel-level profile such as HTA's temporal breakdown counts).
    """
    if gpu.empty:
        return []
    rank = gpu["rank"].to_numpy(np.int64)
    ranks, key = np.unique(rank, return_inverse=True)
    stream = gpu["stream"].astype("category")
    kinds = {"compute": 0, **{n: i + 1 for i, (_, names) in enumerate(COMM_KINDS) for n in names}}
    lookup = np.array([kinds.get(str(c), -1) for c in stream.cat.categories], dtype=np.int64)
    cat = lookup[stream.cat.codes.to_numpy()] if len(lookup) else np.full(len(gpu), -1)
    start, end = gpu["start_s"].to_numpy(float), gpu["end_s"].to_numpy(float)
    nk = len(COMM_KINDS)
    cat = np.where(cat > 0, cat + 2, cat)  # after host work's and the waits' categories
    host = (cat == 0) & (gpu["phase"] == HOST_PHASE).to_numpy()
    cat = np.where(host, 1, cat)
    on = cat >= 0
    keys, starts, ends, cats = [key[on]], [start[on]], [end[on]], [cat[on]]
    caused: np.ndarray = np.zeros((len(ranks), nk + 1))  # per rank: seconds of wait segments by kind, then bubble
    waits = causal_waits(gpu) if causal else None
    if waits is not None and len(waits.rank):
        index = {name: i for i, (name, _) in enumerate(COMM_KINDS)}  # the bubble: nk
        to_kind = np.array([index.get(SUMMARY_KIND.get(c, ""), nk) for c in WAIT_CLASSES])
        wk = np.searchsorted(ranks, waits.rank)
        ws, we = np.clip(waits.start, 0.0, T), np.clip(waits.end, 0.0, T)
        caused = np.bincount(wk * (nk + 1) + to_kind[waits.cls], weights=we - ws,
                             minlength=len(ranks) * (nk + 1)).reshape(len(ranks), nk + 1)
        keys.append(wk)  # disjoint from compute and from each other: one category, above the rows
        starts.append(ws)
        ends.append(we)
        cats.append(np.full(len(wk), 2, dtype=np.int64))
    spent = attribute(np.concatenate(keys), np.concatenate(starts), np.concatenate(ends), np.concatenate(cats),
                      len(ranks), nk + 3, T)
    comp = cat == 0
    phase = gpu["phase"].astype("category")
    names = [str(c) for c in phase.cat.categories]
    pcode = phase.cat.codes.to_numpy()[comp]
    dur, k = (end - start)[comp], key[comp]

    def spent_in(p: str) -> np.ndarray:
        w = np.where(pcode == names.index(p), dur, 0.0) if p in names else np.zeros(len(dur))
        return np.bincount(k, weights=w, minlength=len(ranks))

    total = np.bincount(k, weights=dur, minlength=len(ranks))
    recompute, optimizer, imbalance = spent_in("recompute"), spent_in("optimizer"), spent_in("imbalance")
    stage = gpu.groupby(key)["stage"].max().to_numpy()
    out: list[dict[str, float]] = []
    for i, r in enumerate(ranks.tolist()):
        b = {"stage": int(stage[i]), "rank": int(r), "recompute": float(recompute[i]),
             "optimizer": float(optimizer[i]),
             "compute": float(total[i]) - float(recompute[i]) - float(optimizer[i]) - float(imbalance[i]),
             "moe_imbalance": float(imbalance[i])}
        for j, (name, _) in enumerate(COMM_KINDS):
            b[f"exposed_{name}_comm"] = float(caused[i, j] + spent[i, j + 3])
        b["bubble"] = float(caused[i, nk] + spent[i, -1])
        b["host_wait"] = float(spent[i, 1])
        b["compute_busy"] = float(spent[i, 0])
        out.append(b)
    return out


def _gpu_rows(tl: pd.DataFrame) -> pd.DataFrame:
    """The GPU rows (rank >= 0): the engine writes them first, so usually a slice, not a copy."""
    gpu = tl["rank"].to_numpy() >= 0
    k = int(gpu.sum())
    return tl.iloc[:k] if gpu[:k].all() else tl[gpu]


def _devices(spec: WorkloadSpec, device: Device) -> list[Device]:
    """The device of every GPU the layout uses (mixed clusters: ``node_devices``)."""
    c = spec.cluster
    nd = c.node_devices
    if not nd:
        return [device]
    return [nd.get(r // c.gpus_per_node, device) for r in range(spec.num_gpus)]


def _peak_flops(spec: WorkloadSpec, device: Device) -> float:
    """Dense peak per GPU, averaged over the GPUs used (MFU's denominator)."""
    devs = _devices(spec, device)
    fp32 = spec.training.precision == "fp32"
    return sum(d.peak_flops_fp32 if fp32 else d.peak_flops for d in devs) / len(devs)


def _torch_memory_stats(spec: WorkloadSpec, peak: float, reserved: float) -> dict[str, float]:
    """The peaks PyTorch's own statistics would print (``torch.cuda.max_memory_allocated`` and
    ``max_memory_reserved``): the peak and the reserved peak without what the caching allocator does not hold
    (the CUDA context and NCCL's buffers, :data:`simcluster.costs.memory.OUTSIDE_ALLOCATOR_BYTES`). None for
    ``jax``, whose XLA runtime has an allocator of its own."""
    if spec.training.framework == "jax":
        return {}
    return {"torch_max_memory_allocated_bytes": max(peak - OUTSIDE_ALLOCATOR_BYTES, 0.0),
            "torch_max_memory_reserved_bytes": max(reserved - OUTSIDE_ALLOCATOR_BYTES, 0.0)}


def _uncertainty(figures: dict[str, float], breakdown: list[dict[str, float]], spec: WorkloadSpec,
                 devices: list[Device], level: float,
                 shares: dict[str, float] | None = None) -> tuple[Summary, dict[str, object]]:
    """The intervals of iteration time, tokens/s, MFU and peak memory (summary keys) and where
    their σ come from (details), by :mod:`simcluster.metrics.uncertainty`'s model; ``shares``: the compute's
    seconds by fitted curve (:meth:`simcluster.plan.Plan.curve_shares`), which weight the curves' σ."""
    devices = list({d.name: d for d in devices}.values())
    k = len(breakdown) or 1
    mean = {key: sum(b.get(key, 0.0) for b in breakdown) / k
            for key in ("compute", "recompute", "optimizer", "host_wait", "bubble", "exposed_tp_comm",
                        "exposed_pp_comm", "exposed_dp_comm")}
    h100 = device_calibration("h100")
    tr = spec.training
    compute = max(unc.compute_sigma(d.name, d.vendor, run_calibration(d.name, tr.attention_kernel, tr.framework), h100,
                                    shares, flash=tr.flash_attention, peak_range=d.peak_flops_range) for d in devices)
    c = spec.cluster
    linked = unc.links_calibrated([d.name for d in devices], c.intra_node.fabric, c.inter_node.fabric,
                                  float(c.inter_node.nic_bandwidth or 0.0), -(-spec.num_gpus // c.gpus_per_node),
                                  explicit=c.graph is not None, nic_measured=c.inter_node.nic_efficiency is not None)
    comm = unc.link_sigma(linked)
    stack = unc.stack_sigma(spec.training.framework)
    parts = eb.iteration_parts(mean, compute, comm)
    sigma_t = eb.combined_sigma(parts, stack)
    sigma_m = unc.memory_sigma()
    T = figures["iteration_time_s"]
    t_int = eb.interval(T, sigma_t, level)
    intervals: Summary = {
        "iteration_time_s_interval": t_int,
        "tokens_per_s_interval": eb.inverted(figures["tokens_per_s"], T, t_int),
        "mfu_interval": eb.inverted(figures["mfu"], T, t_int),
        "peak_memory_bytes_interval": eb.interval(figures["peak_memory_bytes"], sigma_m, level),
        "interval_level": level,
    }
    sources: dict[str, object] = {
        "level": level, "z": eb.z_score(level), "iteration_time_sigma": sigma_t, "peak_memory_sigma": sigma_m,
        "stack_sigma": stack, "compute_sigma": compute, "curve_shares": dict(shares or {}),
        "calibrated_device": all(d.name in unc.CALIBRATED_DEVICES for d in devices),
        "calibrated_links": linked,
        "parts": [{"part": p.name, "seconds": p.seconds, "sigma": p.sigma, "group": p.group} for p in parts],
    }
    return intervals, sources


def summarize(res: SimResult, tg: TaskGraph, plan: Plan, topo: Topology,
              level: float = eb.LEVEL) -> tuple[Summary, Details]:
    """(summary.json figures, details for the report) of the simulation of ``plan``; the
    intervals at ``level`` (80 % by default)."""
    spec = plan.spec
    T = max(res.end) if res.end else 0.0
    gpu = _gpu_rows(res.timeline)
    ranks = list(tg.ranks)
    n_gpus = spec.num_gpus
    weight = gpu["rank"].map(tg.multiplicity).fillna(1.0) * gpu["flops"]
    hw_flops = float(weight.sum())
    model_flops = float(weight[gpu["phase"] != "recompute"].sum())
    is_comm = gpu["kind"].isin(("collective", "send"))
    comm_bytes = float((gpu["rank"].map(tg.multiplicity).fillna(1.0) * gpu["bytes"])[is_comm].sum())
    device = topo.device
    peak = _peak_flops(spec, device)
    breakdown = _breakdown(gpu, T)
    for b in breakdown:
        b["exposed"] = b["exposed_tp_comm"] + b["exposed_pp_comm"] + b["exposed_dp_comm"] + b["exposed_ep_comm"]
    weights = _weights(tg, breakdown)
    bubble = _mean(breakdown, "bubble", weights) / T if T else 0.0
    exposed = _mean(breakdown, "exposed", weights) / T if T else 0.0
    util = _mean(breakdown, "compute_busy", weights) / T if T else 0.0
    host = _mean(breakdown, "host_wait", weights) / T if T else 0.0
    for b in breakdown:
        del b["exposed"]

    cap = min(d.memory_bytes for d in _devices(spec, device))  # the smallest device must fit
    memory = [{"stage": s, **plan.memory(s).to_dict()} for s in range(plan.p)]
    retries = 0
    for m in memory:  # what the process holds: the tensors' peak and the caching allocator's reserve, within the device
        reserve = plan.allocator_reserve(int(m["stage"]), headroom=cap - m["total"])
        m["reserved"] = m["total"] + reserve.bytes
        retries = max(retries, reserve.retries_per_step)
    peak_mem = max(m["total"] for m in memory)
    peak_reserved = max(m["reserved"] for m in memory)
    mtf = model_flops / T / n_gpus / 1e12 if T else 0.0
    htf = hw_flops / T / n_gpus / 1e12 if T else 0.0
    tokens = spec.training.global_batch * spec.model.seq_len
    summary: Summary = {
        "num_gpus": n_gpus,
        "iteration_time_s": T,
        "tokens_per_s": tokens / T if T else 0.0,
        "model_tflops_per_gpu": mtf,
        "hardware_tflops_per_gpu": htf,
        "mfu": mtf * 1e12 / peak,
        "hfu": htf * 1e12 / peak,
        "bubble_fraction": bubble,
        "exposed_comm_fraction": exposed,
        "compute_utilization": util,
        "host_wait_fraction": host,
        "peak_memory_bytes": peak_mem,
        "peak_memory_reserved_bytes": peak_reserved,
        **_torch_memory_stats(spec, peak_mem, peak_reserved),
        "memory_capacity_bytes": cap,
        "fits_in_memory": bool(peak_mem <= cap),
        "allocator_retries_per_step": retries,
        "model_flops_per_iteration": model_flops,
        "comm_bytes_per_iteration": comm_bytes,
        "simulated_ranks": len(ranks),
        "microbatches": spec.num_microbatches,
    }
    figures = {"iteration_time_s": T, "tokens_per_s": tokens / T if T else 0.0, "mfu": mtf * 1e12 / peak,
               "peak_memory_bytes": float(peak_mem)}
    devices = _devices(spec, device)
    intervals, sources = _uncertainty(figures, breakdown, spec, devices, level, plan.curve_shares())
    summary.update(intervals)
    details: Details = {
        "ranks": [_rank_label(tg, r) for r in ranks],
        "memory": memory,
        "breakdown": _per_stage(breakdown, weights),
        "warnings": _warnings(summary) + calibration_warnings([d.name for d in devices]),
        "link_utilization": _links(res, topo, T),
        "uncertainty": sources,
        # the run's size, not its wall-clock time: the same input writes the same bytes (cli -v prints the time)
        "simulation": {"tasks": len(tg.tasks), "events": res.events},
    }
    if plan.moe is not None:  # router loads per MoE layer, each expert's share (simcluster.plan.moe)
        details["moe"] = plan.moe.report(plan.m)
    return summary, details


def _rank_label(tg: TaskGraph, r: int) -> dict[str, int | str]:
    n = tg.multiplicity.get(r, 1)
    stage = r // tg.meta["stage_size"]
    if n > 1 and tg.meta.get("fidelity") == "partial":  # the untouched replicas: not consecutive ranks
        label = f"stage {stage} (rank {r} and {n - 1} alike)"
    else:
        label = f"stage {stage} (ranks {r}–{r + n - 1})" if n > 1 else f"stage {stage} (rank {r})"
    return {"rank": r, "stage": stage, "represents": n, "label": label}


def _weights(tg: TaskGraph, breakdown: list[dict[str, float]]) -> list[int] | None:
    """GPUs each simulated rank stands for, where they differ (partial fidelity); else None."""
    w = [tg.multiplicity.get(int(b["rank"]), 1) for b in breakdown]
    return w if len(set(w)) > 1 else None


def _mean(rows: list[dict[str, float]], key: str, weights: list[int] | None) -> float:
    """Mean of ``key`` over the GPUs: over the rows, each weighted by the GPUs it stands for."""
    if weights is None:
        return sum(b[key] for b in rows) / (len(rows) or 1)
    return sum(w * b[key] for w, b in zip(weights, rows)) / sum(weights)


def _per_stage(breakdown: list[dict[str, float]], weights: list[int] | None = None) -> list[dict[str, float]]:
    """The breakdown averaged over the GPUs of each stage (simulated ranks weighted by what they stand for)."""
    keys = ("compute", "recompute", "exposed_tp_comm", "exposed_ep_comm", "exposed_dp_comm", "exposed_pp_comm",
            "bubble", "optimizer", "moe_imbalance", "host_wait")
    stages: dict[int, list[tuple[dict[str, float], int]]] = {}
    for i, b in enumerate(breakdown):
        stages.setdefault(int(b["stage"]), []).append((b, weights[i] if weights else 1))
    out = []
    for s, rows in sorted(stages.items()):
        bs = [b for b, _ in rows]
        w = [m for _, m in rows] if weights else None
        out.append({"stage": s, **{k: _mean(bs, k, w) for k in keys}})
    return out


def calibration_warnings(devices: list[str]) -> list[str]:
    """One line per device whose kernel curves rest partly or wholly on no data of its own."""
    out = []
    for name in dict.fromkeys(devices):
        cal = device_calibration(name)
        missing = [curve for curve, c in cal.curves().items() if not c.measured]
        if missing:
            out.append(f"calibration: {name} has no kernel measurements of its own for {', '.join(missing)} "
                       "(the H100 curves at its datasheet peak); its error band is wider")
    return out


#: What a large ``host_wait_fraction`` means (the warnings of details.json and the report).
HOST_WAIT_WHY = ("the GPU idles while the host works: DeepSpeed ZeRO-3's per-rank loops around its list-based "
                 "collectives (linear in the data-parallel ranks), or loading each step's batch after a per-step "
                 "sync (training.data_loading_wait)")


def _warnings(s: Summary) -> list[str]:
    w: list[str] = []
    f = {k: float(v) for k, v in s.items() if isinstance(v, (int, float))}
    if not s["fits_in_memory"]:
        w.append(f"does not fit in memory: peak {f['peak_memory_bytes'] / 2**30:.1f} GiB per GPU "
                 f"> {f['memory_capacity_bytes'] / 2**30:.1f} GiB")
    elif "peak_memory_reserved_bytes" in f and f["peak_memory_reserved_bytes"] > f["memory_capacity_bytes"]:
        w.append(f"the tensors fit but the caching allocator's reserve may not: peak reserved "
                 f"{f['peak_memory_reserved_bytes'] / 2**30:.1f} GiB per GPU > "
                 f"{f['memory_capacity_bytes'] / 2**30:.1f} GiB even after freeing its cache (fragmented segments: "
                 "expandable_segments reduces the reserve)")
    if f.get("allocator_retries_per_step", 0) > 0:
        w.append(f"the caching allocator runs out of room for new segments: about "
                 f"{int(f['allocator_retries_per_step'])} cache flush(es) per step (num_alloc_retries: a device sync, "
                 "cudaFree of the cached segments, cudaMalloc again), whose time is not simulated")
    if f["exposed_comm_fraction"] > 0.2:
        w.append(f"exposed communication is {f['exposed_comm_fraction']:.0%} of the iteration")
    if f["bubble_fraction"] > 0.2:
        w.append(f"pipeline bubble is {f['bubble_fraction']:.0%} of the iteration")
    if f.get("host_wait_fraction", 0.0) > 0.2:
        w.append(f"host wait is {f['host_wait_fraction']:.0%} of the iteration: {HOST_WAIT_WHY}")
    return w


def _links(res: SimResult, topo: Topology, T: float, top: int = 20) -> list[dict[str, str | float]]:
    used = [i for i, b in enumerate(res.link_bytes) if b > 0]
    used.sort(key=lambda i: (-res.link_bytes[i], i))
    return [{"link": topo.link_names[i], "cls": topo.link_class[i], "busy_s": res.link_busy_s[i],
             "capacity_bytes_per_s": topo.link_bandwidth[i],
             "bytes": res.link_bytes[i],
             "mean_utilization": res.link_bytes[i] / (topo.link_bandwidth[i] * T) if T else 0.0}
            for i in used[:top]]
