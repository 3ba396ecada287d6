"""Error bars on screen and in report.html: each headline figure with its 80 % interval."""

from __future__ import annotations

import re

from simcluster.reporting import print_summary, write_run
from simcluster.reporting.text import summary_rows

INTERVALS = {"iteration_time_s_interval": [27.93, 31.9], "tokens_per_s_interval": [68_000.0, 78_000.0],
             "mfu_interval": [0.41, 0.47], "peak_memory_bytes_interval": [62 * 2**30, 88 * 2**30],
             "interval_level": 0.8}


def test_the_terminal_prints_each_interval_beside_its_figure():
    s = {"iteration_time_s": 29.8, "tokens_per_s": 73_000.0, "mfu": 0.44, "hfu": 0.5,
         "peak_memory_bytes": 73 * 2**30, "memory_capacity_bytes": 80 * 2**30, **INTERVALS}
    text = print_summary(s)
    assert "29.800 s (80 %: 27.930–31.900 s)" in text
    assert "73,000 tokens/s (80 %: 68,000–78,000 tokens/s)" in text
    assert "(80 %: MFU 41.00–47.00 %)" in text
    assert "73.00 GiB of 80.00 GiB (80 %: 62.00–88.00 GiB)" in text
    rows = {k: v for k, _, v in summary_rows(s)}
    assert rows["mfu"] == "44.00 % (80 %: 41.00–47.00 %)"
    # a summary without intervals (an older run folder) prints as before
    assert "(80 %" not in print_summary({"iteration_time_s": 29.8})


def test_report_draws_an_error_bar_per_interval_and_says_where_sigma_comes_from(tmp_path, run_inputs):
    tl, summary, config, details = run_inputs
    s = dict(summary, **{k: v for k, v in INTERVALS.items() if k != "peak_memory_bytes_interval"},
             iteration_time_s=29.8, tokens_per_s=73_000.0, mfu=0.44)
    parts = [{"part": "compute", "seconds": 20.0, "sigma": 0.08, "group": "compute"},
             {"part": "exposed_dp_comm", "seconds": 9.8, "sigma": 0.013, "group": "comm-dp"}]
    d = dict(details, uncertainty={"level": 0.8, "z": 1.2816, "iteration_time_sigma": 0.055,
                                   "peak_memory_sigma": 0.14, "stack_sigma": 0.01, "calibrated_device": False,
                                   "parts": parts})
    write_run(tmp_path, tl, s, config, d)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert len(re.findall(r'<svg [^>]*aria-label="interval"', html)) == 3  # time, tokens/s, MFU
    assert "29.800 s (80 %: 27.930–31.900 s)" in html
    assert "<h2>Error bars</h2>" in html and "exposed_dp_comm" in html and "67.11 %" in html  # 20 / 29.8
    other = re.search(r"<summary>other figures</summary>(.*?)</details>", html, re.S)
    assert other is None or "interval" not in other.group(1)  # shown beside their figures, not again


def test_the_terminal_splits_exposed_communication_by_kind():
    """Given details.json's breakdown, the exposed-communication line says which kinds it waited on
    (shares of the iteration averaged over stages; a kind under 0.05 % left out)."""
    s = {"iteration_time_s": 10.0, "exposed_comm_fraction": 0.06}
    details = {"breakdown": [
        {"stage": 0, "exposed_tp_comm": 0.2, "exposed_ep_comm": 0.0, "exposed_pp_comm": 0.1, "exposed_dp_comm": 0.5},
        {"stage": 1, "exposed_tp_comm": 0.2, "exposed_ep_comm": 0.001, "exposed_pp_comm": 0.1, "exposed_dp_comm": 0.1},
    ]}
    line = next(ln for ln in print_summary(s, None, details).splitlines() if ln.startswith("exposed comm"))
    assert line.endswith("6.00 % (TP 2.00 %, PP 1.00 %, DP 3.00 %)"), line
    assert "(" not in next(ln for ln in print_summary(s).splitlines() if ln.startswith("exposed comm"))
