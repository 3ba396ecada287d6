"""``benchmarks/validation/crosscheck.py``: random layouts run two ways that must agree; it finds a disagreement
when there is one (partial symmetry over shared NICs, as it was before session 28's fix)."""

from __future__ import annotations

import random

from helpers_bench import load_benchmark

CC = load_benchmark("crosscheck")


def test_layouts_are_reproducible_and_valid_often_enough():
    a, b = CC.layout(random.Random(3)), CC.layout(random.Random(3))
    assert a == b and any(s.startswith("training.framework=") for s in a)
    # about 27 % of drawn layouts are valid (300 draws, seeds 7 and 8): 24 draws leave 4 or more about 95 % of the time
    compared, refused, reports = CC.run("fidelity", 24, seed=1)
    assert compared >= 4 and compared + refused == 24
    assert reports == []


def test_a_disagreement_is_reported_with_its_layout(monkeypatch):
    import simcluster.lowering.partial as partial

    sets = ["model.layers=1", "model.hidden=512", "model.heads=8", "model.seq_len=256", "model.vocab=4096",
            "parallelism.tensor=4", "parallelism.pipeline=1", "parallelism.data=8", "parallelism.zero_stage=2",
            "training.micro_batch=2", "training.global_batch=16", "cluster.nodes=4",
            "cluster.inter_node.nics_per_node=4"]
    assert CC.compare("partial", sets) is None
    monkeypatch.setattr(partial, "_groups_slow_each_other", lambda plan, topo: False)  # the old partial symmetry
    why = CC.compare("partial", sets)
    assert why is not None and "(auto)" in why and "(full)" in why
