"""The held-out torchtitan PR #165 SAC figures (``benchmarks/validation/torchtitan_pr165.py``, about 2 s): the
script simulates the corpus' full-AC workload and its per-op SAC twin, which lies between full recompute and
none, and prints each figure against the description's."""

from __future__ import annotations

import json

import yaml

from helpers_bench import load_benchmark
from simcluster import api

TT = load_benchmark("torchtitan_pr165")


def test_sac_lies_between_full_ac_and_none():
    ac, sac = TT.simulate("full"), TT.simulate("selective")
    d = yaml.safe_load(TT.BASE.read_text())
    d["training"]["recompute"] = "none"
    none = api.simulate(d).summary
    assert ac["wps"] < sac["wps"] < float(none["tokens_per_s"]) / TT.GPUS
    assert ac["active"] < sac["active"] < float(none["peak_memory_bytes"]) / TT.GIB


def test_the_script_reports_every_figure(tmp_path, capsys):
    out = tmp_path / "rows.json"
    assert TT.main(["--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [(r["run"], r["figure"]) for r in rows] == [
        (run, f) for run in ("FSDP2 (AC)", "FSDP2 (SAC)") for f in ("wps", "active", "reserved")]
    assert rows[0]["published"] == 6200.0 and rows[3]["published"] == 6700.0
    assert "held out (SAC): 3 rows" in capsys.readouterr().out
