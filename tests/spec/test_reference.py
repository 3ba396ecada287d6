"""docs/reference.md is the generator's output, and every key it lists says what it is."""

from __future__ import annotations

from pathlib import Path

from simcluster.spec.reference import reference_rows, render_reference

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference.md"


def test_reference_md_is_up_to_date():
    assert REFERENCE.read_text() == render_reference(), (
        "docs/reference.md is stale: run `python -m simcluster.spec.reference > docs/reference.md`")


def test_every_key_has_a_description():
    missing = [row.key for row in reference_rows() if not row.description]
    assert not missing, f"add Field(description=...) in simcluster/spec/ for: {', '.join(missing)}"


def test_quantities_carry_their_unit():
    units = {row.key: row.unit for row in reference_rows()}
    assert units["parallelism.grad_bucket_bytes"] == "bytes"
    assert units["inter_node.nic_bandwidth"] == "bytes/s"
    assert units["graph.links[].latency"] == "s"
    assert units["device.peak_flops"] == "FLOP/s"
