"""Multi-head latent attention: the ``model.mla`` section (DeepSeek-V2, arXiv:2405.04434, §2.1).

With ``model.attention: mla`` the keys and values of all heads are up-projected from one
compressed latent of ``kv_lora_rank`` values per token, the queries from one of
``q_lora_rank`` (none: a full h × a·(d + d_R) query projection, as DeepSeek-V2-Lite), and a
decoupled RoPE key of ``rope_head_dim`` values is shared by the heads. A head's query and key
have ``head_dim`` (d, the non-rotary part, ``qk_nope_head_dim`` in DeepSeek's config.json)
+ ``rope_head_dim`` values, its value ``v_head_dim``. DeepSeek-V3 (arXiv:2412.19437 §4.2):
kv_lora_rank 512, q_lora_rank 1536, rope_head_dim 64, head_dim and v_head_dim 128.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from simcluster.spec.fields import STRICT, PositiveInt

if TYPE_CHECKING:
    from simcluster.spec.checks import Finding
    from simcluster.spec.workload import WorkloadSpec


class MlaSpec(BaseModel):
    """The ranks and head sizes of multi-head latent attention (DeepSeek-V2 §2.1.2–2.1.3)."""

    model_config = STRICT
    kv_lora_rank: PositiveInt = Field(le=1_000_000, description="d_c: the compressed key-value latent per token "
                                      "(DeepSeek-V3: 512).")
    q_lora_rank: PositiveInt | None = Field(default=None, le=1_000_000, description="d_c': the compressed query "
                                            "latent (DeepSeek-V3: 1536).",
                                            json_schema_extra={"default_doc": "none: a full query projection"})
    rope_head_dim: PositiveInt = Field(le=100_000, description="d_R: the decoupled RoPE query/key dimension per "
                                       "head, the key's shared by all heads (DeepSeek-V3: 64).")
    v_head_dim: PositiveInt = Field(le=100_000, description="The value dimension per head (DeepSeek-V3: 128); the "
                                    "non-rotary query/key dimension is model.head_dim.")


def mla_checks(spec: "WorkloadSpec") -> list["Finding"]:
    """``attention: mla`` needs ``model.mla`` and the reverse."""
    from simcluster.spec.checks import Finding

    m = spec.model
    if m.attention == "mla" and m.mla is None:
        return [Finding("model.attention", "mla needs a model.mla section (kv_lora_rank, rope_head_dim, v_head_dim)")]
    if m.attention != "mla" and m.mla is not None:
        return [Finding("model.mla", "given but model.attention is not mla", ("model.attention",))]
    if m.attention == "mla" and m.parallel_block:
        return [Finding("model.parallel_block", "not modelled with attention mla", ("model.attention",))]
    if m.attention == "mla" and m.rotary_pct < 1:
        return [Finding("model.rotary_pct", "not modelled with attention mla (its decoupled RoPE key: model.mla)",
                        ("model.attention",))]
    return []
