"""bf16 optimizer states (simcluster.costs.optimizer_states): NeMo's distributed Adam with ``dtype: bf16``.

Sources: nemo/collections/nlp/models/language_modeling/megatron_base_model.py (24.09-alpha.rc0) sets
``store_params`` False when the optimizer dtype equals the model's (no master copy); the Nemotron-4 340B recipe
(dgxc-benchmarking 35a9aec) sets ``dtype: bf16``, ``grad_sync_dtype: bf16``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers_spec import make_spec
from simcluster.costs.frameworks import framework
from simcluster.costs.memory import stage_memory
from simcluster.costs.model_states import held_bytes_per_param
from simcluster.costs.optimizer_states import BF16_STEP_BYTES
from simcluster.errors import SpecError
from simcluster.plan import build_plan
from simcluster.costs.megatron_optimizer import step_bytes
from simcluster.plan.costing import optimizer_time
from simcluster.spec import load_workload

ZERO1 = ("parallelism.data=8", "parallelism.zero_stage=1", "model.layers=2", "training.global_batch=8")
BF16 = ZERO1 + ("training.optimizer_dtype=bf16",)


def test_states_are_2_2_4_bytes_sharded_over_data(tmp_path):
    """Adam: bf16 weights 2 + bf16 gradient buffer 2 + m, v in bf16 4 (no fp32 master), the states over d ranks."""
    on, off = make_spec(tmp_path, *BF16), make_spec(tmp_path, *ZERO1)
    assert held_bytes_per_param(on.training, on.parallelism) == (2, 2, 4, 0, 2)
    assert held_bytes_per_param(off.training, off.parallelism)[:3] == (2, 4, 12)  # Megatron's fp32 main_grad
    kw = dict(layers_on_stage=2, has_embedding=True, has_logits=True, microbatches_in_flight=1)
    a = stage_memory(on.model, on.training, on.parallelism, **kw)
    b = stage_memory(off.model, off.training, off.parallelism, **kw)
    assert a.weights == b.weights and a.gradients == b.gradients / 2 and a.activations == b.activations
    assert a.optimizer_states == pytest.approx(b.optimizer_states * 4 / 12)
    sgd = make_spec(tmp_path, *BF16, "training.optimizer=sgd")
    assert held_bytes_per_param(sgd.training, sgd.parallelism)[:3] == (2, 2, 2)


def test_gradients_reduce_in_bf16_and_the_step_moves_14_bytes(tmp_path):
    on, off = build_plan(make_spec(tmp_path, *BF16)), build_plan(make_spec(tmp_path, *ZERO1))
    assert (on.grad_bytes, off.grad_bytes) == (2, 4)
    assert on.stack.optimizer_states == "bf16" and off.stack.optimizer_states == "fp32"
    bf16, fp32 = framework("megatron", 1, optimizer_dtype="bf16"), framework("megatron", 1)
    assert optimizer_time(on.cm, "adam", 8e9, 8, bf16)[1] == pytest.approx(BF16_STEP_BYTES["adam"] * 1e9) == 14e9
    assert optimizer_time(on.cm, "adam", 8e9, 8, fp32)[1] == pytest.approx(step_bytes("bf16", 8e9, 8))
    assert optimizer_time(on.cm, "adam", 8e9, 8, bf16)[0] < optimizer_time(on.cm, "adam", 8e9, 8, fp32)[0]


@pytest.mark.parametrize("override", ["training.framework=pytorch", "training.precision=fp16",
                                      "parallelism.zero_stage=0"])
def test_needs_megatron_bf16_and_a_distributed_optimizer(tmp_path, override):
    with pytest.raises(SpecError, match="training.optimizer_dtype: bf16 describes NeMo"):
        make_spec(tmp_path, *BF16, override)


def test_nemotron4_340b_on_128_h100_fits_as_its_recipe_runs():
    """The recipe's bf16 states make the 128-GPU layout (data 2) fit in 80 GiB; with fp32 states it would not."""
    path = Path(__file__).resolve().parents[2] / "simcluster/data/validation/megatron/nemotron4-340b-128.yaml"
    spec = load_workload(str(path))
    assert spec.training.optimizer_dtype == "bf16"
    plan = build_plan(spec)
    assert max(plan.memory(s).total for s in range(plan.p)) < 80 * 2**30
    fp32 = build_plan(load_workload(str(path), overrides=["training.optimizer_dtype=fp32"]))
    assert max(fp32.memory(s).total for s in range(fp32.p)) > 80 * 2**30
