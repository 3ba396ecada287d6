"""A small hand-built run: 2 pipeline stages × 2 tensor-parallel ranks, 4 microbatches of 1F1B.

Each forward (backward) of a microbatch is two layers; after every layer the compute
stream waits for a tensor-parallel all-reduce on the ``tp`` stream. Activations and
gradients cross stages on ``pp-fwd``/``pp-bwd`` (send on one side, recv on the other),
then a data-parallel all-reduce on ``dp`` and the optimizer step. Link rows: ``nvlink``
for TP, ``ib`` for pipeline and DP traffic.
"""

from __future__ import annotations

import pandas as pd

F, B, P2P, DP, OPT = 1.0e-3, 2.0e-3, 1.0e-4, 5.0e-4, 3.0e-4
TP_SHARE = 0.1  # of each layer's time, spent in the TP all-reduce


def _row(rank, stream, task, tid, kind, phase, stage, mb, layer, s, e, flops=0.0, nbytes=0.0):
    return dict(resource=f"gpu{rank}", rank=rank, stream=stream, task=task, task_id=tid, kind=kind, phase=phase,
                stage=stage, microbatch=mb, layer=layer, start_s=s, end_s=e, flops=flops, bytes=nbytes)


def _link(name, cls, s, e, nbytes):
    return dict(resource=f"link:{name}", rank=-1, stream=cls, task="", task_id=-1, kind="link", phase="",
                stage=-1, microbatch=-1, layer=-1, start_s=s, end_s=e, flops=0.0, bytes=nbytes)


def one_f_one_b(p: int, m: int) -> dict[int, list[tuple[str, int]]]:
    """Per stage, the 1F1B order of ("F"|"B", microbatch)."""
    out = {}
    for s in range(p):
        warm = min(p - s - 1, m)
        order = [("F", i) for i in range(warm)]
        f, b = warm, 0
        while b < m:
            if f < m:
                order.append(("F", f))
                f += 1
            order.append(("B", b))
            b += 1
        out[s] = order
    return out


def make_timeline(p: int = 2, m: int = 4, tp: int = 2) -> pd.DataFrame:
    """The synthetic timeline (see the module docstring)."""
    rows, links = [], []
    tid = 0
    done: dict[tuple[str, int, int], float] = {}  # (F|B, stage, mb) -> end of its compute
    order = one_f_one_b(p, m)
    free = {s: 0.0 for s in range(p)}
    pos = {s: 0 for s in range(p)}
    pending = sum(len(v) for v in order.values())
    while pending:
        progressed = False
        for s in range(p):
            if pos[s] >= len(order[s]):
                continue
            op, mb = order[s][pos[s]]
            dep = ("F", s - 1, mb) if op == "F" else ("B", s + 1, mb)
            if op == "F" and s == 0 or op == "B" and s == p - 1:
                ready = 0.0 if op == "F" else done[("F", s, mb)]
            elif dep in done:
                ready = done[dep] + P2P
            else:
                continue
            t = max(free[s], ready)
            dur = F if op == "F" else B
            phase = "forward" if op == "F" else "backward"
            for layer in range(2):
                lay = s * 2 + layer
                c_end = t + dur / 2 * (1 - TP_SHARE)
                tp_end = c_end + dur / 2 * TP_SHARE
                for r in range(s * tp, (s + 1) * tp):
                    rows.append(_row(r, "compute", f"{op.lower()}wd L{lay}" if op == "F" else f"bwd L{lay}", tid,
                                     "compute", phase, s, mb, lay, t, c_end, flops=1e12))
                    rows.append(_row(r, "tp", f"tp.allreduce L{lay}", tid + 1, "collective", "tp_comm", s, mb, lay,
                                     c_end, tp_end, nbytes=2e7))
                links.append(_link(f"nvsw{s}", "nvlink", c_end, tp_end, 2e7))
                tid += 2
                t = tp_end
            free[s] = t
            done[(op, s, mb)] = t
            # send to the neighbour stage
            nxt = s + 1 if op == "F" else s - 1
            if 0 <= nxt < p:
                stream = "pp-fwd" if op == "F" else "pp-bwd"
                for r in range(s * tp, (s + 1) * tp):
                    rows.append(_row(r, stream, f"send {op} mb{mb}", tid, "send", "pp_comm", s, mb, -1, t, t + P2P,
                                     nbytes=1e7))
                    rows.append(_row(nxt * tp + r - s * tp, stream, f"recv {op} mb{mb}", tid + 1, "recv", "pp_comm",
                                     nxt, mb, -1, t, t + P2P, nbytes=1e7))
                links.append(_link(f"ib{min(s, nxt)}", "ib", t, t + P2P, 1e7 * tp))
                tid += 2
            pos[s] += 1
            pending -= 1
            progressed = True
        assert progressed, "schedule deadlock"
    end_bwd = max(free.values())
    for s in range(p):
        t0 = free[s]
        for r in range(s * tp, (s + 1) * tp):
            rows.append(_row(r, "dp", "dp.allreduce grads", tid, "collective", "dp_comm", s, -1, -1, t0, t0 + DP,
                             nbytes=4e8))
            rows.append(_row(r, "compute", "optimizer step", tid + 1, "optimizer", "optimizer", s, -1, -1,
                             max(t0 + DP, end_bwd), max(t0 + DP, end_bwd) + OPT))
        links.append(_link(f"ib{s}", "ib", t0, t0 + DP / 2, 2e8))
        links.append(_link(f"ib{s}", "ib", t0 + DP / 4, t0 + DP, 2e8))  # overlaps the one before (shared link)
        tid += 2
    df = pd.DataFrame(rows + links)
    return df.sort_values(["start_s", "resource", "stream", "task_id"], kind="mergesort").reset_index(drop=True)


def make_details(p: int = 2, tp: int = 2, t_iter: float = 0.0162) -> dict:
    """Ranks, memory, breakdown, warnings and link utilization for the synthetic run."""
    ranks = [dict(rank=r, stage=r // tp, represents=64, label=f"stage {r // tp} (ranks {r * 64}–{r * 64 + 63})")
             for r in range(p * tp)]
    gib = 1024**3
    memory = [dict(stage=s, weights=10 * gib, gradients=10 * gib, optimizer_states=40 * gib,
                   activations=(12 - 4 * s) * gib, buffers=1 * gib, total=(73 - 4 * s) * gib) for s in range(p)]
    parts = dict(compute=0.012, recompute=0.0, exposed_tp_comm=0.0013, exposed_dp_comm=0.0004, exposed_pp_comm=0.0006,
                 optimizer=0.0003)
    breakdown = [dict(stage=s, bubble=t_iter - sum(parts.values()), **parts) for s in range(p)]
    return dict(ranks=ranks, memory=memory, breakdown=breakdown,
                warnings=["stage 0 holds 2 more layers than stage 1"],
                link_utilization=[dict(link="nvsw0", cls="nvlink", busy_s=0.0013, bytes=3.2e8, mean_utilization=0.07)])


def make_summary(timeline: pd.DataFrame) -> dict:
    """Contract summary figures consistent enough with the timeline."""
    t = float(timeline["end_s"].max())
    return dict(num_gpus=256, iteration_time_s=t, tokens_per_s=4 * 2048 * 16 / t, model_tflops_per_gpu=123.456,
                hardware_tflops_per_gpu=150.25, mfu=0.3957, hfu=0.4816, bubble_fraction=0.2345,
                exposed_comm_fraction=0.1234, compute_utilization=0.6421, peak_memory_bytes=73 * 1024**3,
                memory_capacity_bytes=80 * 1024**3, fits_in_memory=True)


def make_config() -> dict:
    """A resolved workload, abridged."""
    return dict(name="tiny-gpt", model=dict(layers=4, hidden=1024, heads=16, seq_len=2048, vocab=51200),
                training=dict(global_batch=64, micro_batch=1, precision="bf16", optimizer="adam", recompute="none"),
                parallelism=dict(tensor=2, pipeline=2, data=64, context=1, schedule="1f1b", zero_stage=0),
                cluster=dict(name="dgx-a100-80gb", device=dict(name="a100-80gb", peak_flops=312e12),
                             gpus_per_node=8, nodes=32))
