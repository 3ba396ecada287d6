"""Sweep plots and report.html on a synthetic results table: memory misses are marked."""

from __future__ import annotations

import pandas as pd

from simcluster.reporting.sweep_plots import format_metric, plot_heatmap, plot_throughput
from simcluster.sweep.report import counts, render_html, summary_text, write_sweep_report

PNG = b"\x89PNG\r\n\x1a\n"
KEYS = ["parallelism.tensor", "parallelism.pipeline", "training.micro_batch"]


def synthetic() -> pd.DataFrame:
    rows = []
    point = 0
    for t in (1, 2, 4, 8):
        for p in (1, 2, 4):
            for mb in (1, 2):
                status, fits, tps, msg = "ok", t * p >= 2, 1e5 * (t + p + mb), ""
                if t == 8 and p == 4:
                    status, tps, fits, msg = "invalid", None, None, "parallelism.tensor: too many GPUs"
                elif t == 4 and p == 4 and mb == 2:
                    status, tps, fits, msg = "error", None, None, "RuntimeError: boom"
                rows.append({"point": point, KEYS[0]: t, KEYS[1]: p, KEYS[2]: mb, "tokens_per_s": tps, "mfu": tps and tps / 3e6,
                             "iteration_time_s": tps and 1e6 / tps, "peak_memory_bytes": 8e10, "bubble_fraction": 0.1,
                             "exposed_comm_fraction": 0.05, "fits_in_memory": fits, "status": status, "message": msg,
                             "wall_s": 0.1, "config_hash": f"h{point}"})
                point += 1
    table = pd.DataFrame(rows)
    table["fits_in_memory"] = table["fits_in_memory"].astype("boolean")
    return table


INFO = {"name": "synthetic", "base": "x.yaml", "keys": KEYS, "rank_by": "tokens_per_s", "larger_is_better": True}


def test_plots_and_page(tmp_path):
    table = synthetic()
    files = write_sweep_report(tmp_path, table, INFO)
    assert [f.name for f in files] == ["throughput.png", "heatmap.png", "report.html"]
    for f in files[:2]:
        assert f.read_bytes().startswith(PNG)
    html = (tmp_path / "report.html").read_text()
    # 24 points: t = 8 × p = 4 invalid (2), t = 4 × p = 4 × mb = 2 failed (1), t = p = 1 does not fit (2)
    assert "Ranking: the 19 best layouts that fit in memory" in html
    assert "2 layouts that ran but do not fit in memory" in html
    assert "RuntimeError: boom" in html and "too many GPUs" in html
    assert html.count("data:image/png;base64,") == 2
    c = counts(table)
    assert c == {"ok": 21, "invalid": 2, "error": 1, "oom": 2}


def test_heatmap_needs_two_keys_and_throughput_a_finished_point(tmp_path):
    table = synthetic()
    assert plot_heatmap(table, KEYS[:1], "tokens_per_s", tmp_path / "h.png", "t") is None
    assert plot_throughput(table.assign(status="invalid"), KEYS, "tokens_per_s", tmp_path / "t.png", "t") is None


def test_summary_text_and_formats():
    text = summary_text(synthetic(), INFO)
    assert text.splitlines()[0] == "sweep synthetic: 24 points: 21 ran (2 do not fit in memory), 2 invalid, 1 failed"
    assert "best by tokens/s" in text
    assert format_metric("tokens_per_s", 1367231.26) == "1.37M"
    assert format_metric("tokens_per_s", 883812.0) == "884k"
    assert format_metric("mfu", 0.3087) == "30.9%"
    assert render_html(synthetic().assign(status="invalid"), INFO, []).count("No layout ran and fits") == 1
