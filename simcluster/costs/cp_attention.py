"""The attention kernels one context-parallel rank runs: Transformer Engine's load-balanced ring.

With context parallelism (c ranks) Megatron-Core hands the attention core to Transformer Engine's
``AttnFuncWithCPAndKVP2P`` (``cp_comm_type`` "p2p", TE's default; Megatron-Core 0bda578b, the
commit NeMo 24.09's ``Dockerfile.ci`` pins, has no ``cp_comm_type`` of its own), NVIDIA/
TransformerEngine ``transformer_engine/pytorch/attention.py`` at 40dda924 (NeMo 24.09's ``TE_TAG``).
The sequence is cut into 2c chunks and rank r holds chunks r and 2c − 1 − r (load balancing), s/c
tokens. The forward runs c steps, one flash kernel each, while the next K/V block travels the ring:

- step 0: the rank's own queries against its own keys, a *causal* kernel over s/c tokens;
- step i ≥ 1, i ≤ r: all s/c queries against the first half (s/2c) of the received keys,
  non-causal; i > r: the second half (s/2c) of the queries against all s/c received keys,
  non-causal. Either way (s/c)·(s/2c) query-key pairs: the FLOPs of the causal step 0.

The forward issues its steps on two streams in turn (``flash_attn_streams = [current stream,
cp_stream]``, "to resolve wave quantization issue of Flash Attn in each step"): a step's kernel
fills the SMs the previous one's last wave leaves idle, so the forward is taken as one kernel of the
rank's work, the causal kernel over s divided by c. The backward (``AttnFuncWithCPAndKVP2P.backward``)
runs the same c kernels' backward one after another on the current stream, so its time is the sum
of the steps', with the compute model's flash curve and its convention for non-causal kernels (the
causal curve at the same length, twice the FLOPs):

    t_fwd = t_causal(b, a, s, d) / c
    t_bwd = t_causal,bwd(b, a, s/c, d) + (c − 1) · t_noncausal,bwd(b, a, s/c, d) / 2

the same FLOPs as t_causal,bwd(b, a, s, d) / c, in kernels c times shorter, at the flash curve's
efficiency for s/c (the calibration's (1, 32, 4096, 128) row: 0.900 ms backward on one H100, the
curve 1.005 ms). c = 1 is the plain causal kernel. Left out: the merge kernels around the steps (the
K/V ``cat`` into the send buffer, ``flash_attn_fwd_out_correction``, the dq/dkv copies and adds,
about 0.5 GiB of memory traffic a layer for Llama 3 8B at c = 2, ~2 % of its step).
"""

from __future__ import annotations

from simcluster.costs.compute import ComputeModel


def cp_attention_time(cm: ComputeModel, batch: int, heads: int, seq: int, head_dim: int, context: int, *,
                      flash: bool = True, backward: bool = False, dropout: bool = True, alibi: bool = False,
                      window: int = 0) -> float:
    """Seconds one of ``context`` ranks spends in the attention core of a causal layer over ``seq`` tokens.

    Flash (fused) attention: the forward one kernel of the rank's work, the backward TE's c ring steps
    (module docstring); ``context`` = 1 is one causal kernel. Unfused attention (``flash=False``; TE's
    ring needs a fused kernel) keeps the full kernel over c.
    """
    c = max(1, context)
    if c == 1 or not flash or not backward:
        return cm.attention_time(batch, heads, seq, head_dim, causal=True, flash=flash, backward=backward,
                                 dropout=dropout, alibi=alibi, window=window) / c
    local = max(1, seq // c)
    diagonal = cm.attention_time(batch, heads, local, head_dim, causal=True, flash=True, backward=backward)
    half = cm.attention_time(batch, heads, local, head_dim, causal=False, flash=True, backward=backward) / 2
    return diagonal + (c - 1) * half
