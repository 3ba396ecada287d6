"""What writing a run's outputs costs, against the simulation alone (issue 14's acceptance).

Run: ``python benchmarks/outputs.py [WORKLOAD.yaml] [--repeat N] [--keep DIR]`` (default
``workloads/megatron-1t.yaml``). Each measurement runs in a fresh process, the two kinds
alternating (simulation, run, simulation, run, ...) so that a change in the machine's load
falls on both:

- *simulation alone*: ``simcluster.simulate(load(...))``, the API call that returns the
  summary: its wall time and CPU time (``time.process_time``: the call runs in one process);
  the process's wall and CPU time with its imports beside them;
- *end to end*: ``python -m simcluster run WORKLOAD --out DIR`` with the default outputs: wall
  time, CPU time (user + system of the process and of the drawing children it waited for:
  ``wait4``'s rusage) and peak RSS (``ru_maxrss``: the largest of the process and those
  children, each counted alone);
- the outputs: total size and the largest files.

It prints the figures, the acceptance bounds (end to end ≤ 2× the simulation alone and
≤ 15 s, peak RSS ≤ 1 GB, outputs ≤ 100 MB) and whether each holds, with the load average and
the share of the last 60 s that some process waited for a CPU (``/proc/pressure/cpu``): on
a shared machine the wall times depend on the load, the CPU times much less. ``--repeat``
keeps each timing's best of N runs and prints the ratio of every pair as well.
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
t0, c0 = time.perf_counter(), time.process_time()
import simcluster
spec = simcluster.load(sys.argv[1])
t1, c1 = time.perf_counter(), time.process_time()
out = simcluster.simulate(spec)
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({"call_s": t2 - t1, "call_cpu_s": c2 - c1, "process_s": t2 - t0, "process_cpu_s": c2 - c0}))
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


def _pressure() -> str:
    """The share of the last 60 s some process waited for a CPU, or '' where Linux does not say."""
    try:
        with open("/proc/pressure/cpu", encoding="ascii") as fh:
            some = fh.readline().split()
        return f", CPU pressure {float(some[2].split('=')[1]):.0f} % (60 s)"
    except (OSError, IndexError, ValueError):
        return ""


def measure(workload: str, repeat: int, keep: Path | None) -> dict:
    """The figures of one workload (best of ``repeat`` for the timings, the runs alternating)."""
    import json

    sims, runs = [], []
    out_dir = keep or Path(tempfile.mkdtemp(prefix="simcluster-outputs-"))
    for _ in range(repeat):
        _, _, text, cpu = _run_with_rss([sys.executable, "-c", SIM, workload])
        sims.append(dict(json.loads(text.strip().splitlines()[-1]), process_all_cpu_s=cpu))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        wall, rss, _, cpu = _run_with_rss([sys.executable, "-m", "simcluster", "run", workload, "--out", str(out_dir)])
        runs.append((wall, rss, cpu))
    files = [p for p in out_dir.rglob("*") if p.is_file()]
    sizes = sorted(((p.stat().st_size, str(p.relative_to(out_dir))) for p in files), reverse=True)
    total = sum(s for s, _ in sizes)
    if keep is None:
        shutil.rmtree(out_dir, ignore_errors=True)
    return {"workload": workload,
            "sim_call_s": min(s["call_s"] for s in sims), "sim_call_cpu_s": min(s["call_cpu_s"] for s in sims),
            "sim_process_s": min(s["process_s"] for s in sims),
            "sim_process_cpu_s": min(s["process_all_cpu_s"] for s in sims),
            "e2e_s": min(w for w, _, _ in runs), "e2e_cpu_s": min(c for _, _, c in runs),
            "pair_ratios": [w / s["call_s"] for s, (w, _, _) in zip(sims, runs)],
            "peak_rss_bytes": max(r for _, r, _ in runs), "outputs_bytes": total, "largest": sizes[:6],
            "files": len(files)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workload", nargs="?", default="workloads/megatron-1t.yaml")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--keep", type=Path, help="keep the run's outputs in this folder")
    args = ap.parse_args()
    load = os.getloadavg()
    print(f"{args.workload} on {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
          f"{_pressure()}")
    f = measure(args.workload, max(1, args.repeat), args.keep)
    ratio = f["e2e_s"] / f["sim_call_s"]
    rows = [
        ("simulation alone (API call)", f"{f['sim_call_s']:.2f} s, CPU {f['sim_call_cpu_s']:.2f} s", ""),
        ("simulation process (with imports)", f"{f['sim_process_s']:.2f} s, CPU {f['sim_process_cpu_s']:.2f} s", ""),
        ("run, end to end", f"{f['e2e_s']:.2f} s, CPU {f['e2e_cpu_s']:.2f} s",
         f"≤ 15 s: {'yes' if f['e2e_s'] <= 15 else 'NO'}"),
        ("end to end / simulation alone", f"{ratio:.2f}×", f"≤ 2×: {'yes' if ratio <= 2 else 'NO'}"
         + (f" (each pair: {', '.join(f'{r:.2f}' for r in f['pair_ratios'])})" if len(f["pair_ratios"]) > 1 else "")),
        ("CPU: run / simulation call", f"{f['e2e_cpu_s'] / f['sim_call_cpu_s']:.2f}×",
         f"writing the outputs: {f['e2e_cpu_s'] - f['sim_process_cpu_s']:.2f} CPU-s (run − simulation process)"),
        ("peak RSS", f"{f['peak_rss_bytes'] / 2**20:.0f} MiB",
         f"≤ 1 GB: {'yes' if f['peak_rss_bytes'] <= 1e9 else 'NO'}"),
        ("default outputs", f"{f['outputs_bytes'] / 1e6:.1f} MB in {f['files']} files",
         f"≤ 100 MB: {'yes' if f['outputs_bytes'] <= 100e6 else 'NO'}"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, verdict in rows:
        print(f"  {name:<{width}}  {value:>26}  {verdict}")
    print("  largest files: " + ", ".join(f"{n} {s / 1e6:.1f} MB" for s, n in f["largest"]))


if __name__ == "__main__":
    main()
