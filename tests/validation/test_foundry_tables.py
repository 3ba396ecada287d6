"""The held-out llm-foundry sweep (``benchmarks/validation/foundry_tables.py``) builds its rows as the corpus does.

Every 8-GPU corpus row taken from the same two tables (H100 80GB BF16, A100 80GB) must appear in the
script with the corpus' published figure, and the script's workload for it must be the corpus'
workload field by field (model, training, layout, device), so that the 85 held-out rows are the
same model of the same stack. No simulation here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from simcluster import api
from simcluster.spec import load_workload
from simcluster.validation import corpus

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("foundry_tables", ROOT / "benchmarks" / "validation" / "foundry_tables.py")
assert _spec is not None and _spec.loader is not None
FT = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(FT)

#: The corpus' rows from these tables: 8 GPUs, A100 80GB or H100 (the MPT-125M/350M rows ran on A100 40GB).
SHARED = [r for g in corpus.load_corpus() for r in g.rows
          if r.key.startswith("foundry-mpt-") and r.device in ("h100", "a100-80gb")
          and load_workload(r.path).num_gpus == FT.GPUS]


def test_the_shared_rows_are_the_ones_expected():
    assert {r.key for r in SHARED} == {"foundry-mpt-1b-h100", "foundry-mpt-3b-h100", "foundry-mpt-7b-h100",
                                       "foundry-mpt-13b-h100", "foundry-mpt-1b-h100-32k", "foundry-mpt-7b-a100",
                                       "foundry-mpt-1b-a100", "foundry-mpt-1b-a100-32k", "foundry-mpt-13b-a100"}


@pytest.mark.parametrize("row", SHARED, ids=lambda r: r.key)
def test_the_script_runs_the_corpus_row_with_its_figure_and_workload(row):
    spec = load_workload(row.path)
    device = "h100" if row.device == "h100" else "a100"
    m, tr = spec.model, spec.training
    match = [t for t in FT.TABLES[device]
             if FT.MODELS[t[0]] == (m.layers, m.hidden, m.heads) and t[1] == m.seq_len and t[2] == tr.micro_batch
             and t[3] == spec.num_microbatches and t[4] == (tr.recompute == "full")]
    assert len(match) == 1, f"{row.key}: {match}"
    assert match[0][5] == row.published
    base = yaml.safe_load(FT.BASE.read_text())
    built = api.load(FT.workload(device, match[0], base))
    for part in ("model", "training", "parallelism"):
        assert getattr(built, part) == getattr(spec, part), part
    assert built.cluster.device == spec.cluster.device and built.num_gpus == spec.num_gpus

