"""One operator of the transformer, with its FLOPs, bytes, parameters and sharding.

FLOPs count multiply-adds as 2 FLOPs. A linear layer Y[M,N] = X[M,K]·W[K,N]
costs 2MNK forward and 4MNK backward (input gradient plus weight gradient),
the convention of Narayanan et al. 2021 (SC'21, §5.1) and Korthikanti et al.
2022 (§6, eq. 7). Attention scores and values cost 2·b·s²·h each forward,
counted in full (not halved for the causal mask), as in both papers.

Quantities are for one microbatch of the whole (unsharded) model; ``tp`` says
how tensor parallelism (Megatron, Shoeybi et al. 2019) splits the op:

- ``column``: weight split along N (QKV, MLP up): each rank computes N/t outputs;
- ``row``: weight split along K (attention out-projection, MLP down);
- ``heads``: attention core split by heads;
- ``vocab``: embedding and logits split along the vocabulary;
- ``replicated``: every tensor-parallel rank repeats it (LayerNorm, dropout,
  residual) unless sequence parallelism shards it along the sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Bytes of one value of each training precision (the one table; 16-bit formats are 2 bytes).
#: fp8 trains the GEMMs in FP8 and everything else in bf16 (Transformer Engine; DeepSeek-V3 §3.3),
#: so its activations, gradients and messages are 2-byte values; the GEMM operands are
#: :data:`FP8_OPERAND_BYTES` (:mod:`simcluster.costs.compute`).
DTYPE_BYTES: dict[str, int] = {"bf16": 2, "fp16": 2, "fp32": 4, "fp8": 2}
#: Bytes of one FP8 value (E4M3 or E5M2): the GEMM operands and the activations cached in FP8.
FP8_OPERAND_BYTES: int = 1

OP_KINDS = ("gemm", "attention", "norm", "elementwise", "embedding", "loss")
TP_SHARDING = ("column", "row", "heads", "vocab", "replicated")


@dataclass(frozen=True, slots=True)
class Op:
    """One operator for one microbatch of the unsharded model."""

    name: str
    kind: str
    block: str  # embedding | attn | mlp | head  (the task a layer's ops are fused into)
    layer: int  # -1 for embedding / head ops
    fwd_flops: float
    bwd_flops: float
    fwd_bytes: float  # bytes read + written by the forward kernel(s)
    tp: str
    gemm: tuple[int, int, int] | None = None  # (M, N, K), unsharded
    attn: tuple[int, int, int, int] | None = None  # (batch, heads, seq, head_dim)
    elements: int = 0  # elements touched by a memory-bound op (unsharded)
    kv: tuple[int, int] = (0, 0)  # QKV: (K and V columns 2·g·d of N, K/V heads g), for g < t replication
    dropout: bool = True  # attention core: a dropout over the probabilities (model.attention_dropout > 0)
    alibi: bool = False  # attention core: ALiBi's bias added through baddbmm (model.alibi)
    window: int = 0  # attention core: keys each query attends to (model.sliding_window; 0: the causal prefix)
