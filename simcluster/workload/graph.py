"""Build the operator graph of a decoder-only transformer (GPT-style, pre-LayerNorm).

Per layer (Shoeybi et al. 2019, Fig. 2; Narayanan et al. 2021, §5.1)::

    ln1 → qkv → attn_core → proj → residual1 → ln2 → fc1 → act → fc2 → residual2

preceded by the token/position embedding and followed by the final LayerNorm,
the logits projection and the cross-entropy loss.

With b = micro batch, s = sequence, h = hidden, a = heads, g = kv heads,
d = h / a, f = ffn hidden (SwiGLU doubles the up projection), V = vocab:

- qkv:   Y[bs, (a + 2g)·d] = X[bs, h] W          2·bs·h·(a+2g)d FLOPs
- core:  QKᵀ and softmax·V                        4·b·s²·h FLOPs (Narayanan eq. 2's 4Bs²h term)
- proj:  Y[bs, h] = X[bs, h] W                    2·bs·h² FLOPs
- fc1:   Y[bs, f or 2f] = X[bs, h] W              2·bs·h·f (×2 for SwiGLU)
- fc2:   Y[bs, h] = X[bs, f] W                    2·bs·f·h
- logits: Y[bs, V] = X[bs, h] Wᵀ                  2·bs·h·V

With a = g and f = 4h the layer costs 24·bs·h² + 4·b·s²·h forward, which is
Korthikanti et al. 2022 eq. 7 divided by 3·l (forward only).

Activation bytes saved for backward follow Korthikanti et al. 2022 §4.1
(16-bit activations): 34·s·b·h + 5·a·s²·b per layer, split over the ops that
save them (the 5·a·s²·b softmax/dropout term vanishes with flash attention).
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from simcluster.workload.ops import Op

DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}


def _layer(layer: int, m: Any, b: int, dt: int, flash: bool) -> list[Op]:
    s, h, a, g, f = m.seq_len, m.hidden, m.heads, m.kv_heads, m.ffn_hidden
    d = h // a
    bs = b * s
    qkv_n = (a + 2 * g) * d
    up_n = 2 * f if m.mlp == "swiglu" else f
    act_out = f
    sbh = bs * h

    def gemm(name: str, block: str, n: int, k: int, tp: str, saved: float) -> Op:
        flops = 2.0 * bs * n * k
        return Op(name, "gemm", block, layer, flops, 2 * flops, dt * (bs * k + k * n + bs * n),
                  n * k + n, saved, tp, gemm=(bs, n, k))

    def mem(name: str, kind: str, block: str, elems: int, params: int, saved: float,
            rw: float = 2.0, flops_per: float = 1.0) -> Op:
        return Op(name, kind, block, layer, flops_per * elems, 2 * flops_per * elems,
                  rw * dt * elems, params, saved, "replicated", elements=elems)

    softmax_saved = 0.0 if flash else 5.0 * a * s * s * b
    core = Op("attn_core", "attention", "attn", layer, 4.0 * b * s * s * h, 8.0 * b * s * s * h,
              dt * 4 * sbh, 0, dt * 3 * sbh + softmax_saved, "heads", attn=(b, a, s, d))
    return [
        mem("ln1", "norm", "attn", sbh, 2 * h, 2.0 * sbh, flops_per=5.0),
        gemm("qkv", "attn", qkv_n, h, "column", 2.0 * sbh),
        core,
        gemm("proj", "attn", h, h, "row", 2.0 * sbh),
        mem("residual1", "elementwise", "attn", sbh, 0, 1.0 * sbh, rw=3.0),
        mem("ln2", "norm", "mlp", sbh, 2 * h, 2.0 * sbh, flops_per=5.0),
        gemm("fc1", "mlp", up_n, h, "column", 2.0 * sbh),
        Op("act", "elementwise", "mlp", layer, 8.0 * bs * act_out, 16.0 * bs * act_out,
           dt * bs * (up_n + act_out), 0, dt * bs * up_n, "column", elements=bs * up_n),
        gemm("fc2", "mlp", h, f, "row", dt * bs * f),
        mem("residual2", "elementwise", "mlp", sbh, 0, 1.0 * sbh, rw=3.0),
    ]


def _embedding(m: Any, b: int, dt: int) -> list[Op]:
    bs, h, V = b * m.seq_len, m.hidden, m.vocab
    return [Op("embedding", "embedding", "embedding", -1, 1.0 * bs * h, 1.0 * bs * h,
               2.0 * dt * bs * h, V * h + m.seq_len * h, 0.0, "vocab", elements=bs * h)]


def _head(m: Any, b: int, dt: int) -> list[Op]:
    bs, h, V = b * m.seq_len, m.hidden, m.vocab
    logits_params = 0 if m.tied_embeddings else V * h
    flops = 2.0 * bs * V * h
    return [
        Op("final_ln", "norm", "head", -1, 5.0 * bs * h, 10.0 * bs * h, 2.0 * dt * bs * h,
           2 * h, dt * bs * h, "replicated", elements=bs * h),
        Op("logits", "gemm", "head", -1, flops, 2 * flops, dt * (bs * h + h * V + bs * V),
           logits_params, dt * bs * h, "vocab", gemm=(bs, V, h)),
        # fp32 softmax cross-entropy over the vocabulary-parallel logits
        Op("loss", "loss", "head", -1, 5.0 * bs * V, 5.0 * bs * V, (dt + 4.0) * bs * V,
           0, 4.0 * bs * V, "vocab", elements=bs * V),
    ]


def build_operator_graph(model: Any, training: Any) -> nx.DiGraph:
    """The operator graph for one microbatch: nodes ``"L{i}.{op}"``, ``"embedding"``, ...

    Each node has ``op`` (an :class:`Op`) and ``order`` (its position in a
    forward pass); edges follow the data flow, including the residual paths.
    """
    dt = DTYPE_BYTES[training.precision]
    b, flash = training.micro_batch, training.flash_attention
    g = nx.DiGraph(name=getattr(model, "name", "transformer"))
    order = 0

    def add(node: str, op: Op) -> str:
        nonlocal order
        g.add_node(node, op=op, order=order)
        order += 1
        return node

    prev = add("embedding", _embedding(model, b, dt)[0])
    for layer in range(model.layers):
        block_in = prev
        names = []
        for op in _layer(layer, model, b, dt, flash):
            node = add(f"L{layer}.{op.name}", op)
            g.add_edge(prev, node)
            names.append(node)
            prev = node
        g.add_edge(block_in, f"L{layer}.residual1")  # residual paths
        g.add_edge(f"L{layer}.residual1", f"L{layer}.residual2")
    for op in _head(model, b, dt):
        node = add(op.name, op)
        g.add_edge(prev, node)
        prev = node
    return g


def ops_in_order(graph: nx.DiGraph) -> list[Op]:
    """The graph's operators in forward execution order (deterministic)."""
    nodes = nx.lexicographical_topological_sort(graph, key=lambda n: graph.nodes[n]["order"])
    return [graph.nodes[n]["op"] for n in nodes]


def layer_ops(graph: nx.DiGraph, layer: int) -> list[Op]:
    """The operators of transformer layer ``layer`` (or of the embedding/head for -1)."""
    return [op for op in ops_in_order(graph) if op.layer == layer]
