"""The public Python API, used as a notebook would: only names of ``simcluster.__all__``.

Load from a mapping and from a Hugging Face config.json (tests/data/hf), simulate, read the
timeline, the per-stage breakdown and memory, write the files of ``run``, sweep three points
and search a toy (small space, few simulations).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import simcluster

ROOT = Path(__file__).resolve().parent.parent
HF = Path(__file__).resolve().parent / "data" / "hf"
TOY = {
    "name": "api-toy",
    "model": {"layers": 4, "hidden": 1024, "heads": 16, "seq_len": 1024, "vocab": 32000},
    "training": {"global_batch": 16, "micro_batch": 2},
    "parallelism": {"tensor": 2, "pipeline": 2, "data": 2},
    "cluster": {"preset": "dgx-a100-80gb", "nodes": 1},
}


def test_the_public_names_are_listed():
    for name in ("load", "simulate", "sweep", "search", "Result", "SpecError", "WorkloadSpec", "__version__"):
        assert name in simcluster.__all__
        assert getattr(simcluster, name) is not None
    assert simcluster.load.__doc__ and ">>>" in simcluster.load.__doc__


def test_load_simulate_and_read(tmp_path):
    w = simcluster.load(TOY, overrides=["training.micro_batch=1"])
    assert w.num_gpus == 8 and w.training.micro_batch == 1
    r = simcluster.simulate(w)
    assert r.summary["iteration_time_s"] > 0 and 0 < r.summary["mfu"] < 1
    tl = r.timeline
    assert isinstance(tl, pd.DataFrame) and len(tl) > 0
    assert {"stream", "kind", "stage", "start_s", "end_s"} <= set(tl.columns)
    assert tl["end_s"].max() == pytest.approx(r.summary["iteration_time_s"], rel=1e-6)
    assert list(r.breakdown["stage"]) == [0, 1] and list(r.memory["stage"]) == [0, 1]
    assert (r.memory["total"] > 0).all()
    out = r.write(tmp_path / "run")
    assert json.loads((out / "summary.json").read_text())["iteration_time_s"] == r.summary["iteration_time_s"]
    assert (out / "complete.json").exists() and (out / "config.json").exists()


def test_load_from_a_hugging_face_config():
    w = simcluster.load({**TOY, "model": {"from": str(HF / "tiny-llama" / "config.json"), "seq_len": 512}})
    m = w.model
    assert (m.layers, m.hidden, m.heads, m.kv_heads, m.ffn_hidden, m.vocab) == (4, 1024, 16, 4, 2816, 32000)
    assert m.mlp == "swiglu" and m.tied_embeddings is False and m.seq_len == 512  # given beside `from`: wins
    assert simcluster.simulate(w).summary["tokens_per_s"] > 0


def test_bad_input_raises_spec_error():
    with pytest.raises(simcluster.SpecError) as info:
        simcluster.load({**TOY, "parallelism": {"tensor": 3}})
    assert any(p.key.startswith("parallelism") or "tensor" in p.reason for p in info.value.problems)


def test_sweep_three_points(tmp_path):
    table = simcluster.sweep({"base": TOY, "grid": {"training.micro_batch": [1, 2, 4]}})
    assert list(table["training.micro_batch"]) == [1, 2, 4]
    assert (table["status"] == "ok").all() and (table["iteration_time_s"] > 0).all()


def test_search_a_toy():
    ranking = simcluster.search(TOY, top=2, max_simulations=2, overrides=["parallelism.pipeline=1,2"])
    assert len(ranking) >= 2
    ok = ranking[ranking["status"] == "ok"]
    assert (ok["num_gpus"] <= 8).all() and ok["tokens_per_s"].iloc[0] > 0
