"""``export-chakra`` writes one trace per GPU by default (issue 16): the GPUs of a pipeline stage
get the stage's simulated rank's tasks with every rank renamed to their own peers;
``--per-simulated-rank`` keeps one file per simulated rank."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simcluster.chakra import have_chakra
from simcluster.cli import main
from simcluster.plan.grid import RankGrid

ROOT = Path(__file__).resolve().parents[2]
TOY = str(ROOT / "workloads" / "toy-8gpu.yaml")  # TP2 x PP2 x DP2


def test_rank_map_keeps_groups_whole():
    from simcluster.chakra.export import rank_map

    grid = RankGrid(2, 1, 4, 2)
    for gpu in range(grid.size):
        rep, rename = rank_map(grid, gpu, zero_shard=2)
        assert rep == grid.rank(pp=grid.coords(gpu)[3]) and rename(rep) == gpu
        assert sorted(rename(r) for r in grid.tp_group(rep)) == list(grid.tp_group(gpu))
        assert sorted(rename(r) for r in grid.dp_group(rep)) == sorted(grid.dp_group(gpu))
        assert sorted(rename(r) for r in grid.shard_group(rep, 2)) == sorted(grid.shard_group(gpu, 2))
        assert sorted(rename(r) for r in grid.replica_group(rep, 2)) == sorted(grid.replica_group(gpu, 2))
        nxt = grid.rank(pp=1) if rep == 0 else grid.rank(pp=0)
        assert rename(nxt) == grid.rank(*grid.coords(gpu)[:3], 1 - grid.coords(gpu)[3])  # its own pipeline peer
        assert sorted(map(rename, range(grid.size))) == list(range(grid.size))  # a permutation


needs_chakra = pytest.mark.skipif(not have_chakra(), reason="simcluster[chakra] not installed "
                                  "(pip install --no-deps mlc-chakra protobuf)")


@needs_chakra
def test_one_trace_per_gpu_renamed_and_run_gives_the_same_iteration(tmp_path):
    from simcluster.chakra.load import _read

    assert main(["export-chakra", TOY, str(tmp_path / "et"), "--prefix", "toy"]) == 0
    assert sorted(p.name for p in (tmp_path / "et").glob("*.et")) == [f"toy.{r}.et" for r in range(8)]
    meta, nodes = _read(tmp_path / "et" / "toy.5.et")  # stage 1, tensor rank 1: a mirror of rank 4
    assert meta["sc.mirror_of"] == 4 and meta["sc.gpu"] == 5
    attrs = [{a.name: a for a in n.attr} for n in nodes]
    groups = {tuple(a["pg_ranks"].int64_list.values) for a in attrs if "pg_ranks" in a}
    assert (4, 5) in groups and (0, 1) not in groups
    recv_src = {a["comm_src"].int64_val for a in attrs if "comm_src" in a and "comm_dst" in a
                and a["comm_dst"].int64_val == 5}
    assert recv_src == {1}  # stage 0's GPU with the same tensor and data coordinates
    assert main(["run", TOY, "--out", str(tmp_path / "yaml")]) == 0
    assert main(["run", str(tmp_path / "et"), "--out", str(tmp_path / "trace")]) == 0
    a = json.loads((tmp_path / "yaml" / "summary.json").read_text())
    b = json.loads((tmp_path / "trace" / "summary.json").read_text())
    assert b["iteration_time_s"] == a["iteration_time_s"]


@needs_chakra
def test_per_simulated_rank_keeps_todays_files(tmp_path):
    assert main(["export-chakra", TOY, str(tmp_path), "--prefix", "toy", "--per-simulated-rank"]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.et")) == ["toy.0.et", "toy.4.et"]
