"""report.html and the terminal table."""

from __future__ import annotations

import re

from simcluster.reporting import print_summary, write_run
from simcluster.reporting.text import summary_rows


def _html(tmp_path, inputs):
    write_run(tmp_path, *inputs)
    return (tmp_path / "report.html").read_text(encoding="utf-8")


def test_html_has_every_figure_and_images(written_run):
    summary = written_run[1][1]
    html = (written_run[0] / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    for key, label, value in summary_rows(summary):
        assert label in html and value in html, key
    for value in ("16.2 ms", "123.5 TFLOP/s", "39.57 %", "73.00 GiB", "80.00 GiB"):
        assert value in html
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', html)) == 4  # gantt, schedule, utilization, memory
    assert "tiny-gpt" in html and "<details>" in html
    assert "optimizer states" in html and "pipeline bubble (idle)" in html  # memory and breakdown tables


def test_html_is_self_contained(written_run):
    html = (written_run[0] / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"https?://", html)
    assert "<script" not in html and "<link" not in html


def test_html_warnings(tmp_path, run_inputs):
    tl, summary, config, details = run_inputs
    bad = dict(summary, fits_in_memory=False, peak_memory_bytes=90 * 1024**3, exposed_comm_fraction=0.31)
    html = _html(tmp_path, (tl, bad, config, details))
    assert "Does not fit in memory" in html
    assert "Exposed communication is 31.00 %" in html
    assert "Pipeline bubble is 23.45 %" in html
    assert "stage 0 holds 2 more layers" in html
    assert 'class="warn bad"' in html


def test_print_summary(run_inputs):
    _, summary, config, _ = run_inputs
    text = print_summary(summary, config)
    for value in ("16.2 ms", "tokens/s", "123.5 TFLOP/s", "39.57 %", "23.45 %", "12.34 %",
                  "73.00 GiB of 80.00 GiB", "yes"):
        assert value in text, value
    lines = text.splitlines()
    assert lines[0].startswith("tiny-gpt on 256 GPUs")
    # values start in one column
    starts = {len(line) - len(line.split("  ", 1)[1].lstrip()) for line in lines[2:]}
    assert len(starts) == 1
    assert print_summary({}, {})  # nothing known: still a table
    assert print_summary({**summary, "num_gpus": 1}, config).startswith("tiny-gpt on 1 GPU (")
    tpu = {**config, "cluster": {**(config.get("cluster") or {}), "device": "tpu-v4"}}
    assert print_summary({**summary, "num_gpus": 4}, tpu).startswith("tiny-gpt on 4 TPU chips (")
    assert "TFLOP/s per chip" in print_summary(summary, tpu) and "TFLOP/s per GPU" in text


def test_html_layout_memory_and_links(written_run):
    html = (written_run[0] / "report.html").read_text(encoding="utf-8")
    assert "<h2>Layout</h2>" in html and "tensor 2 · pipeline 2 · data 64" in html
    assert "<h2>Memory</h2>" in html and "of 80.00 GiB" in html and "91.25 %" in html  # 73 of 80 GiB
    assert "<h2>Busiest links</h2>" in html and "nvsw0" in html
    assert "gantt-START-END.png" in html and "traces/" in html and "TraceAnalysis" in html
    assert "pipeline bubble in theory" in html and "(p−1)/(m+p−1)" in html


def test_html_does_not_repeat_a_warning(tmp_path, run_inputs):
    tl, summary, config, details = run_inputs
    details = dict(details, warnings=["pipeline bubble is 23% of the iteration", "something else"])
    html = _html(tmp_path, (tl, summary, config, details))
    assert "Pipeline bubble is 23.45 %" in html and "pipeline bubble is 23%" not in html
    assert "something else" in html


def test_many_stages_fold_their_tables(tmp_path, run_inputs):
    """Past 16 stages the breakdown and memory tables show their lowest, median and highest
    rows and fold the whole table away."""
    tl, summary, config, details = run_inputs
    gib = 1024**3
    memory = [dict(stage=s, weights=gib, gradients=gib, optimizer_states=gib, activations=(s % 7) * gib, buffers=0,
                   total=(3 + s % 7) * gib) for s in range(64)]
    breakdown = [dict(stage=s, compute=0.01, bubble=0.001 * (s % 5)) for s in range(64)]
    html = _html(tmp_path, (tl, summary, config, dict(details, memory=memory, breakdown=breakdown)))
    assert html.count("(highest)") == 2 and html.count("(median)") == 2 and html.count("(lowest)") == 2
    assert "all 64 stages" in html
