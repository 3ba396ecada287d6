"""``run`` and ``report`` end to end: every workload writes every file of the contract.

Runs go through ``simcluster.cli.main`` in-process; one test runs the real
``python -m simcluster`` in a subprocess to prove the entry point and its exit codes.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from simcluster.cli import main

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = sorted((ROOT / "workloads").glob("*.yaml"))
TOY = ROOT / "workloads" / "toy-8gpu.yaml"

#: Workloads whose full iteration takes too long to simulate in a unit test, run with a smaller
#: global batch: same parallel layout and data-parallel size, fewer microbatches
#: (still a multiple of micro_batch × data). Full runs on 2 cores: gpt3-175b ~15 s, megatron-1t ~2 min.
REDUCED = {
    "gpt3-175b.yaml": ["training.global_batch=128"],  # 8 × 16 microbatches (was 192)
    "megatron-1t.yaml": ["training.global_batch=48"],  # 6 × 8 microbatches (was 512)
    "mt-nlg-530b.yaml": ["training.global_batch=560"],  # 8 × 35 microbatches of 2 (was 120)
    "gopher-280b.yaml": ["training.global_batch=768"],  # 64 × 12 microbatches (was 48)
    # interleaved needs a multiple of 16 microbatches (16 already): 8 data-parallel replicas instead of 128
    "llama3-405b.yaml": ["parallelism.data=8", "cluster.nodes=128", "training.global_batch=128"],
    "deepseek-v3.yaml": ["training.global_batch=2048"],  # 16 microbatches (was 120); full run ~15 s
    "mixtral-8x7b.yaml": ["training.global_batch=64"],  # 4 microbatches (was 16)
}

#: summary.json keys the contract fixes.
SUMMARY_KEYS = {
    "num_gpus", "iteration_time_s", "tokens_per_s", "model_tflops_per_gpu", "hardware_tflops_per_gpu",
    "mfu", "hfu", "bubble_fraction", "exposed_comm_fraction", "compute_utilization",
    "peak_memory_bytes", "memory_capacity_bytes", "fits_in_memory",
}
#: Files every run writes besides the timeline.
RUN_FILES = ("summary.json", "config.json", "gantt.png", "utilization.png", "trace.json", "report.html")
#: Timeline columns the contract names (``resource`` is "gpu or link").
TIMELINE_COLUMNS = {"resource", "stream", "task", "kind", "phase", "stage", "microbatch", "start_s", "end_s"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def cli(*argv: str | Path) -> tuple[int, str, str]:
    """Run ``main(argv)`` in-process; return (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def run_ok(workload: Path, out: Path, *overrides: str) -> str:
    """Run ``workload`` into ``out`` with ``--set overrides``; assert success; return stdout."""
    argv: list[str | Path] = ["run", workload, "--out", out]
    for o in overrides:
        argv += ["--set", o]
    rc, stdout, stderr = cli(*argv)
    assert rc == 0, f"run {workload.name} exited {rc}\n{stderr}"
    assert "Traceback" not in stdout + stderr
    return stdout


def timeline_file(run_dir: Path) -> Path:
    found = [run_dir / n for n in ("timeline.csv", "timeline.parquet") if (run_dir / n).is_file()]
    assert found, f"{run_dir}: neither timeline.csv nor timeline.parquet"
    return found[0]


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def assert_contract_files(run_dir: Path) -> None:
    for name in RUN_FILES:
        path = run_dir / name
        assert path.is_file() and path.stat().st_size > 0, f"{run_dir}: missing or empty {name}"
    summary = read_json(run_dir / "summary.json")
    assert SUMMARY_KEYS <= set(summary), f"summary.json lacks {sorted(SUMMARY_KEYS - set(summary))}"
    config = read_json(run_dir / "config.json")
    for section in ("model", "training", "parallelism", "cluster"):
        assert isinstance(config.get(section), dict), f"config.json lacks section {section}"
    assert isinstance(config["cluster"].get("device"), (dict, str))

    for png in ("gantt.png", "utilization.png"):
        assert (run_dir / png).read_bytes()[:8] == PNG_MAGIC, f"{png} is not a PNG"
    trace = read_json(run_dir / "trace.json")
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    assert isinstance(events, list) and any(e.get("ph") == "X" for e in events), "trace.json has no duration events"
    html = (run_dir / "report.html").read_text()
    assert "<html" in html.lower()
    # self-contained: the plots are embedded, nothing is fetched from elsewhere
    assert html.count("data:image/png;base64,") >= 2
    assert not re.search(r"""(src|href)=["']?(?!data:|#)[^"'\s>]+""", html), "report.html links to outside files"

    tl = timeline_file(run_dir)
    if tl.suffix == ".csv":
        header = tl.read_text().splitlines()[0].split(",")
        assert TIMELINE_COLUMNS <= set(header), f"timeline lacks {sorted(TIMELINE_COLUMNS - set(header))}"
        assert len(tl.read_text().splitlines()) > 1, "timeline has no rows"
    else:
        pd = pytest.importorskip("pandas")
        frame = pd.read_parquet(tl)
        assert TIMELINE_COLUMNS <= set(frame.columns)
        assert len(frame) > 0


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> tuple[Path, str]:
    """One run of toy-8gpu shared by the tests that only read it: (folder, printed summary)."""
    out = tmp_path_factory.mktemp("toy") / "run"
    return out, run_ok(TOY, out)


def test_the_workloads_folder_is_not_empty():
    assert TOY in WORKLOADS


@pytest.mark.parametrize("workload", WORKLOADS, ids=[w.stem for w in WORKLOADS])
def test_every_workload_writes_every_contract_file(workload, tmp_path, toy_run):
    if workload == TOY:
        out = toy_run[0]  # already run once for this module
    else:
        out = tmp_path / "run"
        run_ok(workload, out, *REDUCED.get(workload.name, ()))
    assert_contract_files(out)
    summary = read_json(out / "summary.json")
    config = read_json(out / "config.json")
    p = config["parallelism"]
    assert summary["num_gpus"] == p["tensor"] * p["pipeline"] * p["data"] * p.get("context", 1)
    assert summary["iteration_time_s"] > 0
    assert 0 < summary["mfu"] <= summary["hfu"] < 1


def test_reductions_name_existing_workloads():
    names = {w.name for w in WORKLOADS}
    assert set(REDUCED) <= names, f"REDUCED names workloads that are gone: {sorted(set(REDUCED) - names)}"


def test_toy_summary_is_sane(toy_run):
    out, _ = toy_run
    s = read_json(out / "summary.json")
    config = read_json(out / "config.json")
    assert s["num_gpus"] == 8
    assert s["iteration_time_s"] > 0
    assert 0 < s["mfu"] <= s["hfu"] < 1
    assert 0 <= s["bubble_fraction"] < 1
    assert 0 <= s["exposed_comm_fraction"] < 1
    assert 0 < s["compute_utilization"] <= 1
    tokens = config["training"]["global_batch"] * config["model"]["seq_len"]
    assert tokens == 16 * 1024
    assert math.isclose(s["tokens_per_s"], tokens / s["iteration_time_s"], rel_tol=1e-9)
    assert 0 < s["peak_memory_bytes"] <= s["memory_capacity_bytes"]
    assert s["memory_capacity_bytes"] == 80 * 2**30
    assert s["fits_in_memory"] is True


def _seconds(text: str, unit: str) -> float:
    scale = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "min": 60.0, "h": 3600.0}
    assert unit in scale, f"unknown time unit {unit!r}"
    return float(text.replace(",", "")) * scale[unit]


def test_printed_summary_shows_the_iteration_time(toy_run):
    out, printed = toy_run
    s = read_json(out / "summary.json")
    lines = [line for line in printed.splitlines() if "iteration time" in line.lower()]
    assert lines, f"no iteration time in the printed summary:\n{printed}"
    m = re.search(r"([\d,]+(?:\.\d+)?)\s*(ms|us|µs|min|s|h)\b", lines[0])
    assert m, lines[0]
    assert math.isclose(_seconds(m.group(1), m.group(2)), s["iteration_time_s"], rel_tol=0.01)


def test_run_is_deterministic(tmp_path):
    """Two runs of one input write the same folder, byte for byte: every file (details.json has no
    wall-clock figure; ``-v`` prints the simulation's time instead)."""
    a, b = tmp_path / "a", tmp_path / "b"
    run_ok(TOY, a)
    run_ok(TOY, b)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert {"summary.json", "details.json", "trace.json", "report.html"} <= {f.name for f in files}
    assert timeline_file(a).name == timeline_file(b).name
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_verbose_run_prints_the_simulation_time(tmp_path):
    rc, out, err = cli("run", TOY, "--out", tmp_path / "run", "-v")
    assert rc == 0, err
    assert re.search(r"simulated [\d,]+ tasks, [\d,]+ events in \d+\.\d{3} s", out), out


@pytest.mark.parametrize("overrides, gpus", [
    (("parallelism.tensor=1", "parallelism.data=4"), 8),  # 1 × 2 × 4
    (("parallelism.data=1",), 4),                          # 2 × 2 × 1
])
def test_set_overrides_reach_config_and_figures(tmp_path, toy_run, overrides, gpus):
    base = read_json(toy_run[0] / "summary.json")
    out = tmp_path / "run"
    run_ok(TOY, out, *overrides)
    config = read_json(out / "config.json")
    summary = read_json(out / "summary.json")
    for o in overrides:
        key, value = o.split("=")
        section, name = key.split(".")
        assert config[section][name] == int(value), f"config.json does not reflect --set {o}"
    p = config["parallelism"]
    assert summary["num_gpus"] == gpus == p["tensor"] * p["pipeline"] * p["data"] * p["context"]
    assert config["num_gpus"] == gpus
    assert config["num_microbatches"] == 16 // (2 * p["data"])
    assert summary["iteration_time_s"] != base["iteration_time_s"]
    assert math.isclose(summary["tokens_per_s"], 16 * 1024 / summary["iteration_time_s"], rel_tol=1e-9)


def test_report_redraws_deleted_files(tmp_path, toy_run):
    run_dir = tmp_path / "copy"
    shutil.copytree(toy_run[0], run_dir)
    summary_before = (run_dir / "summary.json").read_bytes()
    (run_dir / "gantt.png").unlink()
    (run_dir / "report.html").unlink()
    rc, out, err = cli("report", run_dir)
    assert rc == 0, err
    assert (run_dir / "gantt.png").read_bytes()[:8] == PNG_MAGIC
    html = (run_dir / "report.html").read_text()
    assert "<html" in html.lower() and "data:image/png;base64," in html
    assert (run_dir / "summary.json").read_bytes() == summary_before  # a redraw does not re-simulate
    assert_contract_files(run_dir)


def test_python_dash_m_simcluster(tmp_path, toy_run):
    """The real entry point: exit status 0 on success, 2 on bad input, no traceback.

    The subprocess has its own string-hash seed, so matching the in-process run byte for byte
    also shows the results do not depend on set/dict iteration order.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONHASHSEED"] = "12345"

    def python_m(*args: str | Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "simcluster", *map(str, args)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)

    ok = python_m("run", TOY, "--out", tmp_path / "run")
    assert ok.returncode == 0, ok.stderr
    assert "iteration time" in ok.stdout.lower()
    assert not (tmp_path / "reports").exists()  # --out was honoured
    assert (tmp_path / "run" / "summary.json").read_bytes() == (toy_run[0] / "summary.json").read_bytes()
    assert timeline_file(tmp_path / "run").read_bytes() == timeline_file(toy_run[0]).read_bytes()

    bad = python_m("run", TOY, "--set", "parallelism.data=4", "--out", tmp_path / "bad")
    assert bad.returncode == 2, bad.stderr
    assert "Traceback" not in bad.stdout + bad.stderr
    assert "parallelism.data" in bad.stderr
    assert not (tmp_path / "bad").exists()
