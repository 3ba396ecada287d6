"""Build workload specs for tests from a small base workload plus overrides."""

from __future__ import annotations

from pathlib import Path

from simcluster.spec import load_workload

BASE = """\
name: t
model: {layers: 8, hidden: 1024, heads: 16, seq_len: 1024, vocab: 32000}
training: {global_batch: 16, micro_batch: 1, precision: bf16}
parallelism: {tensor: 1, pipeline: 1, data: 1}
cluster: {preset: dgx-a100-80gb, nodes: 1}
"""


def make_spec(tmp_path: Path, *overrides: str, base: str = BASE):
    f = tmp_path / "w.yaml"
    f.write_text(base)
    return load_workload(str(f), overrides=list(overrides))


def run_error_line(tmp_path: Path, workload: Path, override: str) -> str:
    """``python -m simcluster run WORKLOAD --set OVERRIDE``, which must fail with exit status 2 and one
    line on stderr (no traceback): that line."""
    import subprocess
    import sys
    root = Path(__file__).resolve().parents[1]
    bad = subprocess.run([sys.executable, "-m", "simcluster", "run", str(workload), "--set", override,
                          "--out", str(tmp_path / "bad")], capture_output=True, text=True, timeout=120, cwd=root)
    assert bad.returncode == 2, bad.stderr
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in bad.stderr, bad.stderr
    return lines[0]
