"""Memory per GPU as a full simulation reports it (``details["memory"]``) against closed forms.

- Activations per layer and microbatch: Korthikanti et al. 2022 ("Reducing Activation
  Recomputation in Large Transformer Models"), Table 2, every setting, 16-bit values, no
  flash attention (2022 Megatron keeps the a·s² softmax and dropout tensors).
- Model states: Rajbhandari et al. 2020 (ZeRO), §5: mixed-precision Adam holds 2 + 2 + 12 bytes
  per parameter, partitioned stage by stage (optimizer states, then gradients, then parameters);
  Megatron keeps its bf16 gradients in an fp32 ``main_grad`` buffer (Megatron-Core
  docs/source/api-guide/dist_optimizer.md: "bf16 parameters, fp32 gradients 18 | 6 + 12/d"), so
  under the megatron stack: 18·Ψ per GPU without ZeRO, Ψ(6 + 12/N_d) at stage 1, Ψ(2 + 16/N_d)
  at stage 2, 18Ψ/N_d at stage 3.

Each case runs ``simulate_workload`` (the memory a user sees) and checks it against the
formula written out here, not against the helper the simulator uses; the helper itself
is checked the same way.
"""

from __future__ import annotations

import pytest

from helpers_spec import make_spec
from simcluster.costs.memory import activation_bytes_per_layer
from simcluster.run import simulate_workload

# helpers_spec.BASE: 8 layers, h 1024, a 16, s 1024, V 32000, bf16, learned positions, tied
L, H, A, S, V = 8, 1024, 16, 1024, 32000
B, T, P = 2, 2, 4  # micro batch, tensor parallel, pipeline stages
SBH = S * B * H

#: Korthikanti 2022 Table 2, bytes per layer per microbatch: (name, tensor, sequence parallel,
#: recompute, formula)
TABLE2 = [
    ("no parallelism", 1, False, "none", SBH * (34 + 5 * A * S / H)),
    ("tensor parallel", T, False, "none", SBH * (10 + 24 / T + 5 * A * S / (H * T))),
    ("tensor + sequence parallel", T, True, "none", SBH * (34 / T + 5 * A * S / (H * T))),
    ("tensor parallel + selective recompute", T, False, "selective", SBH * (10 + 24 / T)),
    ("tensor + sequence parallel + selective recompute", T, True, "selective", SBH * 34 / T),
    ("full recompute", T, False, "full", SBH * 2),
    ("full recompute + sequence parallel", T, True, "full", SBH * 2 / T),
]


def _simulate(tmp_path, *overrides):
    spec = make_spec(tmp_path, *overrides)
    return spec, simulate_workload(spec)


@pytest.mark.parametrize("name,t,sp,recompute,per_layer", TABLE2, ids=[r[0] for r in TABLE2])
def test_activations_equal_korthikanti_table2(tmp_path, name, t, sp, recompute, per_layer):
    """A middle 1F1B stage holds p − s microbatches of its layers' activations."""
    spec, out = _simulate(
        tmp_path, f"parallelism.tensor={t}", f"parallelism.pipeline={P}", "parallelism.data=1",
        f"parallelism.sequence_parallel={str(sp).lower()}", f"training.recompute={recompute}",
        "training.flash_attention=false", f"training.micro_batch={B}", f"training.global_batch={4 * P * B}")
    assert activation_bytes_per_layer(spec.model, spec.training, spec.parallelism) == pytest.approx(
        per_layer, rel=1e-12)
    stage = 1  # no embedding, no logits: only layers
    layers = L // P
    in_flight = P - stage  # 1F1B (Narayanan et al. 2021 §2.2.1): stage s holds p − s microbatches
    expect = in_flight * layers * per_layer
    if recompute == "full":  # the layer being recomputed holds its full activations once
        expect += SBH * ((34 / t) if sp else (10 + 24 / t)) + SBH * 5 * A * S / (H * t)
    mem = out.details["memory"][stage]
    assert mem["stage"] == stage
    assert mem["activations"] == pytest.approx(expect, rel=1e-12)


def _params(layers: int, t: int, *, embedding: bool, logits: bool) -> float:
    """Ψ on one tensor-parallel rank, GPT layout: a layer has 12h² + 13h parameters, of which
    the four matrices and the QKV and fc1 biases (12h² + 7h) are split t ways."""
    n = layers * ((12 * H * H + 7 * H) / t + 6 * H)
    if embedding:
        n += V * H / t + S * H  # vocab-parallel word embedding + learned positions
    if logits:
        n += 2 * H + (0 if embedding else V * H / t)  # final layernorm (+ own copy of the tied embedding)
    return n


ZERO = {  # bytes per GPU for Ψ parameters on N_d data-parallel ranks (ZeRO §5, K = 12; Megatron's 4-byte main_grad)
    0: lambda psi, nd: 18 * psi,
    1: lambda psi, nd: psi * (6 + 12 / nd),
    2: lambda psi, nd: psi * (2 + 16 / nd),
    3: lambda psi, nd: 18 * psi / nd,
}


@pytest.mark.parametrize("stage", [0, 1, 2, 3])
def test_model_states_follow_zero(tmp_path, stage):
    nd = 8
    _, out = _simulate(tmp_path, "parallelism.data=8", f"parallelism.zero_stage={stage}",
                       "training.global_batch=8")
    (mem,) = out.details["memory"]
    psi = _params(L, 1, embedding=True, logits=True)
    assert psi == 12 * L * H * H + 13 * L * H + V * H + S * H + 2 * H
    states = mem["weights"] + mem["gradients"] + mem["optimizer_states"]
    assert states == pytest.approx(ZERO[stage](psi, nd), rel=1e-12)


@pytest.mark.parametrize("stage", [0, 1, 2, 3])
def test_model_states_follow_zero_per_model_parallel_shard(tmp_path, stage):
    """With t and p, Ψ is what one GPU holds of its stage; ZeRO shards it over the data ranks."""
    t, p, nd = 2, 2, 2
    _, out = _simulate(tmp_path, f"parallelism.tensor={t}", f"parallelism.pipeline={p}",
                       f"parallelism.data={nd}", f"parallelism.zero_stage={stage}", "training.global_batch=8")
    for s, mem in enumerate(out.details["memory"]):
        psi = _params(L // p, t, embedding=(s == 0), logits=(s == p - 1))
        states = mem["weights"] + mem["gradients"] + mem["optimizer_states"]
        assert states == pytest.approx(ZERO[stage](psi, nd), rel=1e-12), f"stage {s}"
