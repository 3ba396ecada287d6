"""docs/constants.md is the generator's output (so the constants table cannot go stale)."""

from pathlib import Path

from simcluster.costs import efficiency as eff
from simcluster.validation.constants import render_constants

DOC = Path(__file__).resolve().parents[2] / "docs" / "constants.md"


def test_constants_md_is_up_to_date():
    assert DOC.read_text(encoding="utf-8") == render_constants(), \
        "regenerate: python -m simcluster.validation.constants > docs/constants.md"


def test_the_table_reads_the_values_the_model_uses():
    text = render_constants()
    assert f"| GEMM efficiency ceiling e_max | {eff.GEMM_EFF_MAX:g} |" in text
    assert "| `h100` |" in text and "| `tpu-v4` |" in text
