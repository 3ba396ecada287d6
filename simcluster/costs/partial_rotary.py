"""Partial rotary embeddings (``model.rotary_pct`` < 1): the copies of splitting q and k into a rotated and a
pass-through part and joining them again.

GPT-NeoX rotates only the first ``rotary_pct`` of each head's query and key dimensions (GPT-NeoX-20B: 0.25,
24 of 96). Its attention (EleutherAI/gpt-neox ``megatron/model/transformer.py``, ``ParallelSelfAttention.forward``
at commit c560814b, "20B Release", 2022-02-10) slices ``query_layer[..., :rotary_ndims]`` and
``query_layer[..., rotary_ndims:]`` (views), rotates the first and joins them with
``torch.cat((query_layer, query_pass), dim=-1)``, and the same for the key; Megatron-Core's
``apply_rotary_pos_emb_bshd`` splits and concatenates alike. With every element of q counted (Q elements of
2 bytes on one rank, per q and per k):

    forward   cat: read 2, write 2                                           4 B per element of q
    backward  each slice's gradient (``slice_backward``: ``at::zeros(input_sizes)`` then
              ``grad_input.slice(...).copy_(grad)``): zero-fill 2 + copy 4·r for the rotated slice,
              zero-fill 2 + copy 4·(1 − r) for the pass-through slice; the two full-size gradients of
              ``query_layer`` summed by autograd (read 2 + 2, write 2)       14 B per element of q

The concatenation's backward hands out views (no kernel). The rotation itself (``apply_rotary_pos_emb``,
TorchScript) is not counted: full rotary, which the simulator does not cost either, runs it too. XLA (jax)
fuses the slices into its program: no separate copies there.
"""

from __future__ import annotations

from simcluster.costs.eager import Basis, Kernel


def _k(name: str, backward: bool, kind: str, basis: Basis, per: float) -> Kernel:
    return Kernel(name, "attn", backward, kind, ((basis, per),))


def partial_rotary_kernels(pct: float) -> tuple[Kernel, ...]:
    """The copies of a partial rotary embedding on q and k (module docstring); none when ``pct`` is 1."""
    if pct >= 1.0:
        return ()
    out: list[Kernel] = []
    bases: tuple[Basis, ...] = ("q", "k")
    for t in bases:
        out += [
            _k(f"rotary_part.{t}.cat", False, "copy", t, 4.0),
            _k(f"rotary_part.{t}.bwd.zeros_rot", True, "elementwise", t, 2.0),
            _k(f"rotary_part.{t}.bwd.copy_rot", True, "copy", t, 4.0 * pct),
            _k(f"rotary_part.{t}.bwd.zeros_pass", True, "elementwise", t, 2.0),
            _k(f"rotary_part.{t}.bwd.copy_pass", True, "copy", t, 4.0 * (1.0 - pct)),
            _k(f"rotary_part.{t}.bwd.accumulate", True, "elementwise", t, 6.0),
        ]
    return tuple(out)
