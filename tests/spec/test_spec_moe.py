"""``model.moe`` and ``parallelism.expert``/``expert_tensor``: defaults and the layout checks."""

from __future__ import annotations

import pytest

from simcluster.errors import SpecError
from simcluster.spec.workload import workload_from_data


def _data(moe: dict | None = None, **par: object) -> dict:
    model = {"layers": 4, "hidden": 1024, "heads": 16, "seq_len": 1024, "vocab": 32000, "ffn_hidden": 2048,
             "mlp": "swiglu"}
    if moe is not None:
        model["moe"] = moe
    return {"name": "m", "model": model, "training": {"global_batch": 16, "micro_batch": 1},
            "parallelism": {"tensor": 1, "pipeline": 1, **par}, "cluster": {"preset": "dgx-h100", "nodes": 2}}


def _reasons(data: dict) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as err:
        workload_from_data(data)
    return [(p.key, p.reason) for p in err.value.problems]


def test_defaults():
    spec = workload_from_data(_data({"experts": 8}, expert=8))
    moe = spec.model.moe
    assert moe is not None and (moe.top_k, moe.shared_experts, moe.dense_layers, moe.every) == (2, 0, 0, 1)
    assert moe.capacity_factor is None and moe.load_imbalance.distribution == "uniform"
    assert spec.parallelism.expert == 8 and spec.parallelism.expert_tensor is None


def test_expert_must_divide_experts():
    found = _reasons(_data({"experts": 8}, expert=3))
    assert ("parallelism.expert", "expert 3 does not divide model.moe.experts 8") in found


def test_expert_grid_must_fit_the_stage():
    # 16 GPUs, pipeline 2: 8 ranks per stage, expert 4 × expert_tensor 4 = 16 does not divide 8
    found = _reasons(_data({"experts": 8}, pipeline=2, expert=4, expert_tensor=4))
    assert any(k == "parallelism.expert" and "does not divide tensor × context × data = 8" in r for k, r in found)


def test_expert_without_moe():
    (found,) = _reasons(_data(None, expert=2))
    assert found == ("parallelism.expert", "expert parallelism needs model.moe")


def test_top_k_at_most_experts():
    found = _reasons(_data({"experts": 4, "top_k": 5}))
    assert found[0][0] == "model.moe" and "top_k 5 is more than experts 4" in found[0][1]


@pytest.mark.parametrize("moe, reason", [
    ({"router_groups": 4}, "set router: node_limited"),
    ({"router": "node_limited", "router_groups": 3}, "router_groups 3 does not divide experts 8"),
    ({"router": "node_limited", "router_groups": 2, "node_limit": 4}, "node_limit 4 is more than router_groups 2"),
])
def test_router_groups_are_node_limited_groups_of_the_experts(moe, reason):
    found = _reasons(_data({"experts": 8, **moe}))
    assert found[0][0] == "model.moe" and reason in found[0][1]


def test_zero2_not_modelled():
    found = _reasons(_data({"experts": 8}, zero_stage=2))
    assert found[0][0] == "parallelism.zero_stage"
