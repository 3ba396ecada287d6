"""What writing a run's outputs costs, against the simulation alone (issue 14's acceptance).

Run: ``python benchmarks/outputs.py [WORKLOAD.yaml] [--repeat N] [--keep DIR]`` (default
``workloads/megatron-1t.yaml``). Each measurement runs in a fresh process:

- *simulation alone*: ``simcluster.simulate(load(...))``, the API call that returns the summary
  (its wall time, and the process's with imports);
- *end to end*: ``python -m simcluster run WORKLOAD --out DIR`` with the default outputs,
  its wall time and peak RSS (``wait4``'s ``ru_maxrss``: the largest of the process and the
  children it waited for);
- the outputs: total size and the largest files.

It prints the figures, the acceptance bounds (end to end ≤ 2× the simulation alone and
≤ 15 s, peak RSS ≤ 1 GB, outputs ≤ 100 MB) and whether each holds, with the load average
(the timings are wall times: measure on a quiet machine; the CPU times beside them depend
less on the load). ``--repeat`` keeps each timing's best of N runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIM = """
import sys, time, json
t0 = time.perf_counter()
import simcluster
from simcluster.run import simulate_workload
from simcluster.spec import load_workload
spec = load_workload(sys.argv[1])
t1 = time.perf_counter()
out = simulate_workload(spec)
t2 = time.perf_counter()
print(json.dumps({"call_s": t2 - t1, "process_s": t2 - t0}))
"""


def _run_with_rss(cmd: list[str]) -> tuple[float, float, str, float]:
    """Run ``cmd`` in a child process; ``(wall seconds, peak RSS in bytes, its stdout, CPU seconds)``
    (the child's own rusage from ``wait4``: Popen would reap it first)."""
    t0 = time.perf_counter()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: run the command with stdout into the pipe
        os.close(r)
        os.dup2(w, 1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.chdir(ROOT)
        os.execvp(cmd[0], cmd)
    os.close(w)
    chunks = []
    with os.fdopen(r) as fh:
        chunks.append(fh.read())
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {os.waitstatus_to_exitcode(status)})")
    return wall, usage.ru_maxrss * 1024.0, "".join(chunks), usage.ru_utime + usage.ru_stime


def measure(workload: str, repeat: int, keep: Path | None) -> dict:
    """The figures of one workload (best of ``repeat`` for the timings)."""
    import json

    sims = []
    for _ in range(repeat):
        _, _, text, cpu = _run_with_rss([sys.executable, "-c", SIM, workload])
        sims.append(dict(json.loads(text.strip().splitlines()[-1]), cpu_s=cpu))
    sim_call = min(s["call_s"] for s in sims)
    sim_proc = min(s["process_s"] for s in sims)
    sim_cpu = min(s["cpu_s"] for s in sims)
    runs = []
    out_dir = keep or Path(tempfile.mkdtemp(prefix="simcluster-outputs-"))
    for _ in range(repeat):
        if out_dir.exists():
            shutil.rmtree(out_dir)
        wall, rss, _, cpu = _run_with_rss([sys.executable, "-m", "simcluster", "run", workload, "--out", str(out_dir)])
        runs.append((wall, rss, cpu))
    files = [p for p in out_dir.rglob("*") if p.is_file()]
    sizes = sorted(((p.stat().st_size, str(p.relative_to(out_dir))) for p in files), reverse=True)
    total = sum(s for s, _ in sizes)
    if keep is None:
        shutil.rmtree(out_dir, ignore_errors=True)
    return {"workload": workload, "sim_call_s": sim_call, "sim_process_s": sim_proc, "sim_cpu_s": sim_cpu,
            "e2e_s": min(w for w, _, _ in runs), "e2e_cpu_s": min(c for _, _, c in runs),
            "peak_rss_bytes": max(r for _, r, _ in runs), "outputs_bytes": total, "largest": sizes[:6],
            "files": len(files)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workload", nargs="?", default="workloads/megatron-1t.yaml")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--keep", type=Path, help="keep the run's outputs in this folder")
    args = ap.parse_args()
    load = os.getloadavg()
    print(f"{args.workload} on {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    f = measure(args.workload, max(1, args.repeat), args.keep)
    ratio = f["e2e_s"] / f["sim_call_s"]
    rows = [
        ("simulation alone (API call)", f"{f['sim_call_s']:.2f} s", ""),
        ("simulation process (with imports)", f"{f['sim_process_s']:.2f} s", ""),
        ("run, end to end", f"{f['e2e_s']:.2f} s", f"≤ 15 s: {'yes' if f['e2e_s'] <= 15 else 'NO'}"),
        ("end to end / simulation alone", f"{ratio:.2f}×", f"≤ 2×: {'yes' if ratio <= 2 else 'NO'}"),
        ("CPU time: simulation process, run", f"{f['sim_cpu_s']:.1f} s, {f['e2e_cpu_s']:.1f} s",
         f"run / simulation {f['e2e_cpu_s'] / f['sim_cpu_s']:.2f}× (independent of the load)"),
        ("peak RSS", f"{f['peak_rss_bytes'] / 2**20:.0f} MiB",
         f"≤ 1 GB: {'yes' if f['peak_rss_bytes'] <= 1e9 else 'NO'}"),
        ("default outputs", f"{f['outputs_bytes'] / 1e6:.1f} MB in {f['files']} files",
         f"≤ 100 MB: {'yes' if f['outputs_bytes'] <= 100e6 else 'NO'}"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, verdict in rows:
        print(f"  {name:<{width}}  {value:>22}  {verdict}")
    print("  largest files: " + ", ".join(f"{n} {s / 1e6:.1f} MB" for s, n in f["largest"]))


if __name__ == "__main__":
    main()
