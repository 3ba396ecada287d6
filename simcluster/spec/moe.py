"""Mixture of experts: the ``model.moe`` section and the checks of its parallel layout.

A layer is a mixture of experts (Shazeer et al. 2017; Lepikhin et al. 2020, GShard; Fedus et
al. 2021, Switch) when it is past the first ``dense_layers`` layers and its index counted from
there is a multiple of ``every``. Its MLP is replaced by a router, ``experts`` routed experts
of inner size ``expert_ffn_hidden`` of which each token uses ``top_k``, and ``shared_experts``
experts every token uses (DeepSeekMoE, Dai et al. 2024).

Expert parallelism composes with the dense layout as Megatron-Core's ``parallel_state`` does
(``RankGenerator`` for the expert grid): inside a pipeline stage the t·c·d ranks that split
the dense layers are regrouped as expert-tensor (innermost), expert and expert-data ranks,
so ``expert_tensor × expert`` must divide ``tensor × context × data`` and the expert-data
degree is (t·c·d) / (expert_tensor · expert).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from simcluster.spec.fields import STRICT, PositiveInt

if TYPE_CHECKING:
    from simcluster.spec.checks import Finding
    from simcluster.spec.workload import WorkloadSpec


class LoadImbalanceSpec(BaseModel):
    """How the router spreads tokens over the experts, drawn per layer and microbatch."""

    model_config = STRICT
    distribution: Literal["uniform", "zipf", "lognormal"] = Field(
        default="uniform", description="uniform: every expert gets exactly its share (a perfectly balanced "
        "router); zipf: the i-th most loaded expert's share ∝ 1/i^skew; lognormal: shares ∝ exp(skew·N(0, 1)). "
        "The experts' order is shuffled per layer and microbatch.")
    skew: Annotated[float, Field(ge=0.0, le=10.0)] = Field(
        default=0.0, description="The distribution's exponent (zipf) or log-space standard deviation "
        "(lognormal); 0 is balanced.")
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = Field(default=0, description="Seed of the draws (the same "
                                                                                    "seed gives the same loads).")


class MoeSpec(BaseModel):
    """A mixture-of-experts MLP (see :mod:`simcluster.spec.moe`)."""

    model_config = STRICT
    experts: Annotated[int, Field(ge=2, le=100_000)] = Field(description="Routed experts per MoE layer.")
    top_k: PositiveInt = Field(default=2, le=1_000, description="Routed experts each token goes to.")
    expert_ffn_hidden: PositiveInt | None = Field(
        default=None, le=10_000_000, description="Inner size of one expert's MLP (its kind is model.mlp).",
        json_schema_extra={"default_doc": "model.ffn_hidden"})
    shared_experts: Annotated[int, Field(ge=0, le=1_000)] = Field(
        default=0, description="Experts every token goes to (DeepSeekMoE), each of expert_ffn_hidden.")
    expert_bias: bool = Field(
        default=False, description="The experts' linear layers have biases (GPT-OSS; Megatron-Core's add_bias_linear "
        "with experts): n_up + hidden parameters an expert; fc2's bias is added weighted by the router's probability in "
        "eager PyTorch, expert by expert (TEGroupedMLP._apply_bias: t + b·p, cat, cast back), 2d + 24 bytes per element "
        "of the experts' output forward and 2d + 32 backward; fc1's runs in its GEMM.")
    dense_layers: Annotated[int, Field(ge=0, le=100_000)] = Field(
        default=0, description="The first layers keep a dense MLP of model.ffn_hidden (DeepSeek-V3: 3).")
    every: PositiveInt = Field(default=1, le=100_000, description="After the dense layers, one MoE layer every "
                               "this many layers (GShard, Switch: 2), the others dense.")
    capacity_factor: Annotated[float, Field(gt=0.0, le=1_000.0)] | None = Field(
        default=None, description="Each expert takes at most capacity_factor × tokens·top_k/experts tokens of a "
        "microbatch; the rest are dropped (Fedus et al. 2021 §2.2). Not given: dropless.",
        json_schema_extra={"default_doc": "dropless"})
    router: Literal["topk", "node_limited"] = Field(
        default="topk", description="topk: each token's top_k experts; node_limited: DeepSeek-V3's routing "
        "that sends a token to experts on at most node_limit nodes (or groups: router_groups).")
    node_limit: PositiveInt = Field(default=4, le=100_000, description="node_limited routing: the most nodes a "
                                    "token's experts lie on (DeepSeek-V3 §2.1.2: 4), or groups with router_groups "
                                    "(Megatron-Core's --moe-router-group-topk, a config.json's topk_group).")
    router_groups: PositiveInt | None = Field(
        default=None, le=100_000, description="node_limited routing: the expert groups (consecutive experts) a token's "
        "experts are drawn from, top_k/node_limit in each of node_limit groups (Megatron-Core's "
        "--moe-router-num-groups); unset: one group per node of the expert-parallel group, DeepSeek-V3's node-limited "
        "routing (a config.json's n_group is read so).", json_schema_extra={"default_doc": "the expert group's nodes"})
    load_imbalance: LoadImbalanceSpec = Field(default_factory=LoadImbalanceSpec,
                                              description="The router's load distribution (below).")

    @model_validator(mode="after")
    def _top_k(self) -> "MoeSpec":
        if self.top_k > self.experts:
            raise ValueError(f"top_k {self.top_k} is more than experts {self.experts}")
        if self.router_groups is not None:
            if self.router != "node_limited":
                raise ValueError("router_groups limits node_limited routing: set router: node_limited")
            if self.experts % self.router_groups:
                raise ValueError(f"router_groups {self.router_groups} does not divide experts {self.experts}")
            if self.node_limit > self.router_groups:
                raise ValueError(f"node_limit {self.node_limit} is more than router_groups {self.router_groups}")
        return self


def moe_checks(spec: "WorkloadSpec") -> list["Finding"]:
    """Cross-field problems of the MoE model and the expert-parallel layout (empty when possible)."""
    from simcluster.spec.checks import Finding

    p, m = spec.parallelism, spec.model
    ep, etp = p.expert, p.expert_tensor or p.tensor
    moe = m.moe
    if moe is None:
        if ep > 1 or (p.expert_tensor or 1) > 1:
            return [Finding("parallelism.expert", "expert parallelism needs model.moe", ("parallelism.expert_tensor",))]
        if getattr(p, "moe_dispatcher", "alltoall") != "alltoall":
            return [Finding("parallelism.moe_dispatcher", f"{p.moe_dispatcher} dispatches a mixture of experts' "
                            "tokens: it needs model.moe", ("model.moe",))]
        return []
    found: list[Finding] = []
    if moe.experts % ep:
        found.append(Finding("parallelism.expert", f"expert {ep} does not divide model.moe.experts {moe.experts}",
                             ("model.moe.experts",)))
    per_stage = p.tensor * p.context * (p.data or 1)
    if p.data is not None and per_stage % (ep * etp):
        found.append(Finding("parallelism.expert", f"expert_tensor × expert = {etp}×{ep} = {etp * ep} does not divide "
                             f"tensor × context × data = {per_stage} (the ranks of a pipeline stage)",
                             ("parallelism.expert_tensor", "parallelism.data")))
    f = moe.expert_ffn_hidden or m.ffn_hidden or 4 * m.hidden
    if f % etp:
        found.append(Finding("parallelism.expert_tensor", f"expert_tensor {etp} does not divide expert_ffn_hidden {f}",
                             ("model.moe.expert_ffn_hidden",)))
    if moe.dense_layers >= m.layers:
        found.append(Finding("model.moe.dense_layers", f"{moe.dense_layers} dense layers leave no MoE layer of "
                             f"{m.layers}", ("model.layers",)))
    if p.zero_stage >= 2:
        found.append(Finding("parallelism.zero_stage", "zero_stage 2 and 3 are not modelled with model.moe "
                             "(use 0 or 1, as DeepSeek-V3 and Megatron-Core MoE training do)", ("model.moe",)))
    if m.parallel_block:
        found.append(Finding("model.parallel_block", "a parallel block is not modelled with model.moe", ("model.moe",)))
    return found
