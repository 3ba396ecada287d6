"""After the backward pass: gradient reduction, tied-embedding sync, optimizer, ZeRO gather.

- Data-parallel gradients are reduced in buckets (Megatron/PyTorch DDP, Li et
  al. 2020 §3.2.3: default 25 MB), filled in the order backward produces them;
  with ``overlap_grad_reduce`` a bucket's all-reduce (reduce-scatter under ZeRO
  ≥ 1, Rajbhandari et al. 2020) starts as soon as the last microbatch's
  backward has produced its last gradient, otherwise after the whole backward.
  Gradients travel in fp32 for bf16 (Megatron's ``main_grad``), 16-bit for fp16.
- Tied word embeddings: the first and last stage all-reduce the embedding
  gradient (Shoeybi et al. 2019 §3).
- The optimizer step is memory-bound: Adam reads fp32 master weights, gradient,
  m and v (16 B/param) and writes master, m, v and the 16-bit copy (14 B);
  SGD with momentum reads 12 B and writes 10 B. ZeRO ≥ 1 steps 1/d of the
  parameters, then all-gathers the updated 16-bit weights.
"""

from __future__ import annotations

from typing import Any

OPTIMIZER_BYTES = {"adam": 30.0, "sgd": 22.0}
OPTIMIZER_KERNELS = 8


def grad_bytes_per_param(precision: str) -> int:
    """Gradient bytes reduced per parameter: Megatron keeps fp32 ``main_grad`` for bf16."""
    return 2 if precision == "fp16" else 4


def _produced(L: Any, s: int) -> list[tuple[int, float]]:
    """(gradient key, parameters per rank) of stage s in the order backward produces them."""
    emb_head = L.opt.include_embedding_head
    out: list[tuple[int, float]] = []
    for k in sorted((k for k in range(L.K) if k % L.p == s), reverse=True):
        if k == L.K - 1 and emb_head:
            out.append((-2, L.head_params))
        out.extend((l, L.layer_params) for l in reversed(L.chunks[k]))
        if k == 0 and emb_head:
            out.append((-1, L.emb_params))
    return out


def add_grad_sync(L: Any, grads: dict[tuple[int, int], int], stage_last: dict[int, int]) -> dict:
    """Add buckets, tied-embedding sync, optimizer and ZeRO gather; returns task-graph metadata."""
    tg, g = L.tg, L.grid
    par, tr = L.spec.parallelism, L.spec.training
    gbytes = L.grad_bytes
    comm: dict[int, list[int]] = {r: [] for r in tg.ranks}
    params_per_stage = []
    for s in range(L.p):
        produced = _produced(L, s)
        params_per_stage.append(sum(pc for _, pc in produced))
        stage_members = tuple(r for chain in L.members(s) for r in chain)
        if par.zero_stage >= 2:  # reduced per layer and microbatch during backward
            for r in stage_members:
                if r in L.last_rs:
                    comm[r].append(L.last_rs[r])
        elif L.d > 1:
            op = "all_reduce" if par.zero_stage == 0 else "reduce_scatter"
            cap = getattr(par, "grad_bucket_bytes", 25e6)
            for ranks, group, mirrors in L.groups("dp", stage_members):
                acc, n = 0.0, 0
                for i, (key, pc) in enumerate(produced):
                    acc += pc * gbytes
                    if acc < cap and i < len(produced) - 1:
                        continue
                    deps = tuple(grads[(r, key)] if par.overlap_grad_reduce else stage_last[r]
                                 for r in ranks)
                    t = tg.add(kind="collective", name=f"dp.{op} bucket{n}", ranks=ranks,
                               stream="dp", deps=deps, transfers=L.plan(op, group, acc, mirrors),
                               nbytes=acc, op=op, group=group, phase="dp_comm", stage=s)
                    for r in ranks:
                        comm[r].append(t.id)
                    acc, n = 0.0, n + 1
    if L.spec.model.tied_embeddings and L.p > 1 and L.opt.include_embedding_head:
        nbytes = L.emb_params * gbytes
        per = g.per_stage
        mirrors = () if L.full else g.stage_mirror_offsets()
        for r0 in (r for chain in L.members(0) for r in chain):
            pair = (r0, r0 + (L.p - 1) * per)
            t = tg.add(kind="collective", name="dp.all_reduce tied-embedding", ranks=pair,
                       stream="dp", deps=(grads[(pair[0], -1)], grads[(pair[1], -2)]),
                       transfers=L.plan("all_reduce", pair, nbytes, mirrors), nbytes=nbytes,
                       op="all_reduce", group=pair, phase="dp_comm", stage=0)
            for r in pair:
                comm[r].append(t.id)
    if L.opt.include_optimizer:
        shard = L.d if par.zero_stage >= 1 else 1
        for s in range(L.p):
            stage_members = tuple(r for chain in L.members(s) for r in chain)
            opt_bytes = OPTIMIZER_BYTES[tr.optimizer] * params_per_stage[s] / shard
            secs = L.cm.memory_time(opt_bytes, "copy") + OPTIMIZER_KERNELS * L.cm.kernel_overhead_s
            steps = {}
            for r in stage_members:
                steps[r] = tg.add(kind="optimizer", name="optimizer.step", ranks=(r,), stream="compute",
                                  deps=tuple([stage_last[r]] + comm[r]), duration=secs * L.slow.get(r, 1.0),
                                  nbytes=opt_bytes, phase="optimizer", stage=s).id
            if par.zero_stage >= 1 and L.d > 1:
                nbytes = params_per_stage[s] * L.dt
                for ranks, group, mirrors in L.groups("dp", stage_members):
                    tg.add(kind="collective", name="zero.all_gather params", ranks=ranks, stream="dp",
                           deps=tuple(steps[r] for r in ranks),
                           transfers=L.plan("all_gather", group, nbytes, mirrors), nbytes=nbytes,
                           op="all_gather", group=group, phase="zero_comm", stage=s)
    return {"params_per_rank": params_per_stage}
