"""Chakra execution traces: export a workload's task graph, simulate the traces, same iteration.

Skipped where the ``simcluster[chakra]`` extra (mlc-chakra + protobuf) is not installed.
"""

from __future__ import annotations

import contextlib
import json
import io
from pathlib import Path

import pytest

from simcluster.chakra import have_chakra, is_trace_dir

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "workloads" / "toy-8gpu.yaml"
GPT3 = ROOT / "workloads" / "gpt3-175b.yaml"

needs_chakra = pytest.mark.skipif(not have_chakra(), reason="simcluster[chakra] not installed "
                                  "(pip install --no-deps mlc-chakra protobuf): Chakra round trip not tested")


def _cli(*argv):
    from simcluster.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


@needs_chakra
@pytest.mark.parametrize("path, overrides", [
    (TOY, []),
    (TOY, ["parallelism.pipeline=4", "parallelism.tensor=1", "parallelism.data=2", "training.global_batch=16",
           "training.micro_batch=1"]),
    (TOY, ["parallelism.schedule=interleaved", "parallelism.virtual_stages=2", "training.recompute=full"]),
    (GPT3, ["training.global_batch=128"]),  # fused layer tasks, 8 stages, 1,024 GPUs
], ids=["toy", "pp4-1f1b", "interleaved-recompute", "gpt3-reduced"])
def test_round_trip_gives_the_same_iteration(tmp_path, path, overrides):
    from simcluster.chakra import export_chakra, simulate_traces
    from simcluster.run import simulate_workload
    from simcluster.spec import load_workload

    spec = load_workload(path, overrides=overrides)
    direct = simulate_workload(spec)
    files = export_chakra(spec, tmp_path / "et", per_gpu=False)
    assert len(files) == len(direct.tasks.ranks)
    assert {f.name for f in files} == {f"{spec.name}.{r}.et" for r in direct.tasks.ranks}
    again = simulate_traces(tmp_path / "et")
    assert again.summary["iteration_time_s"] == direct.summary["iteration_time_s"]
    assert again.summary == direct.summary


@needs_chakra
def test_traces_are_chakra_nodes(tmp_path):
    from chakra.schema.protobuf import et_def_pb2 as pb

    from simcluster.chakra.protocol import attrs_of, read_messages

    rc, out, err = _cli("export_chakra", TOY, tmp_path, "--prefix", "toy")
    assert rc == 0, err
    assert is_trace_dir(tmp_path)
    msgs = list(read_messages((tmp_path / "toy.4.et").read_bytes()))
    meta = pb.GlobalMetadata()
    meta.ParseFromString(msgs[0])
    assert meta.version and attrs_of(meta)["sc.rank"] == 4
    nodes = []
    for m in msgs[1:]:
        n = pb.Node()
        n.ParseFromString(m)
        nodes.append(n)
    ids = {n.id for n in nodes}
    types = {pb.NodeType.Name(n.type) for n in nodes}
    assert {"COMP_NODE", "COMM_COLL_NODE", "COMM_SEND_NODE", "COMM_RECV_NODE"} <= types
    for n in nodes:
        assert set(n.ctrl_deps) <= ids  # dependencies stay within the rank's file
        a = attrs_of(n)
        if n.type == pb.COMP_NODE:
            assert "num_ops" in a and a["is_cpu_op"] is False
        elif n.type == pb.COMM_COLL_NODE:
            assert a["comm_size"] > 0 and "comm_type" in a
        elif n.type in (pb.COMM_SEND_NODE, pb.COMM_RECV_NODE):
            assert {"comm_src", "comm_dst", "comm_tag", "comm_size"} <= set(a)
    recvs = [n for n in nodes if n.type == pb.COMM_RECV_NODE]
    assert all(attrs_of(r)["comm_dst"] == 4 and attrs_of(r)["comm_src"] == 0 for r in recvs)


@needs_chakra
def test_host_work_is_a_cpu_operator(tmp_path):
    """DeepSpeed ZeRO-3's host loops are COMP_NODEs with is_cpu_op true, every GPU compute node false; the
    round trip still gives the same iteration."""
    from chakra.schema.protobuf import et_def_pb2 as pb

    from simcluster.chakra import export_chakra, simulate_traces
    from simcluster.chakra.protocol import attrs_of, read_messages
    from simcluster.run import simulate_workload
    from simcluster.spec import load_workload

    spec = load_workload(TOY, overrides=["parallelism.tensor=1", "parallelism.pipeline=1", "parallelism.data=8",
                                         "parallelism.zero_stage=3", "training.framework=deepspeed"])
    files = export_chakra(spec, tmp_path / "et", per_gpu=False)
    cpu, gpu = [], []
    for m in list(read_messages(files[0].read_bytes()))[1:]:
        n = pb.Node()
        n.ParseFromString(m)
        if n.type == pb.COMP_NODE:
            (cpu if attrs_of(n)["is_cpu_op"] else gpu).append(n.name)
    assert cpu and gpu and all(name.startswith(("zero.prep", "zero.persist_gather")) for name in cpu)
    assert not any(name.startswith(("zero.prep", "zero.persist_gather")) for name in gpu)
    assert simulate_traces(tmp_path / "et").summary == simulate_workload(spec).summary


@needs_chakra
def test_foreign_or_retargeted_traces_are_refused(tmp_path):
    from simcluster.chakra import export_chakra, load_traces
    from simcluster.errors import SpecError
    from simcluster.spec import load_workload

    export_chakra(load_workload(TOY), tmp_path / "et")
    with pytest.raises(SpecError, match="another cluster"):
        load_traces(tmp_path / "et", ["cluster.intra_node.bandwidth=600 GB/s"])
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.0.et").write_bytes(b"\x05hello")
    with pytest.raises(SpecError, match="not a Chakra execution trace|not written by"):
        load_traces(tmp_path / "junk")


def test_export_without_the_extra_says_how_to_install(tmp_path, monkeypatch):
    import simcluster.chakra as chakra

    monkeypatch.setattr(chakra, "have_chakra", lambda: False)
    rc, _, err = _cli("export_chakra", TOY, tmp_path)
    assert rc == 2 and "simcluster[chakra]" in err and "Traceback" not in err


def test_cli_export_then_run_a_trace_folder(tmp_path):
    """``export-chakra`` then ``run DIR`` through the command line gives the same iteration time."""
    from simcluster.chakra import have_chakra
    from simcluster.cli import main

    if not have_chakra():
        pytest.skip("simcluster[chakra] not installed (pip install --no-deps mlc-chakra protobuf)")
    root = Path(__file__).resolve().parents[2]
    toy = str(root / "workloads" / "toy-8gpu.yaml")
    assert main(["run", toy, "--out", str(tmp_path / "yaml")]) == 0
    assert main(["export-chakra", toy, str(tmp_path / "et")]) == 0
    assert main(["run", str(tmp_path / "et"), "--out", str(tmp_path / "trace")]) == 0
    a = json.loads((tmp_path / "yaml" / "summary.json").read_text())
    b = json.loads((tmp_path / "trace" / "summary.json").read_text())
    assert b["iteration_time_s"] == a["iteration_time_s"]


@needs_chakra
def test_an_export_from_before_a_cluster_key_existed_still_loads(tmp_path):
    """Traces whose recorded cluster lacks a key added since (a device's ``peak_flops_range``, session 23) load:
    an unwritten key is the same cluster as one written unset."""
    from chakra.schema.protobuf import et_def_pb2 as pb

    from simcluster.chakra import export_chakra, load_traces
    from simcluster.chakra.protocol import read_messages, write_message
    from simcluster.spec import load_workload

    export_chakra(load_workload(TOY), tmp_path / "et")
    for path in sorted((tmp_path / "et").glob("*.et")):
        msgs = list(read_messages(path.read_bytes()))
        meta = pb.GlobalMetadata()
        meta.ParseFromString(msgs[0])
        for a in meta.attr:
            if a.name == "sc.workload":
                workload = json.loads(a.string_val)
                assert "peak_flops_range" in workload["cluster"]["device"]
                del workload["cluster"]["device"]["peak_flops_range"]
                a.string_val = json.dumps(workload)
        with path.open("wb") as f:  # the metadata without the key, the nodes as they were
            write_message(f, meta)
            for m in msgs[1:]:
                node = pb.Node()
                node.ParseFromString(m)
                write_message(f, node)
    spec, tg = load_traces(tmp_path / "et")
    assert spec.cluster.device.peak_flops_range is None and tg.tasks
