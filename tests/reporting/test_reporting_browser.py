"""report.html in a real browser: headless Chromium loads the page with every image.

Needs Debian's ``chromium`` package (``apt-get install -y chromium``; .ci/run installs it
where it can); skipped with the reason shown otherwise. The screenshot is kept in
``$SIMCLUSTER_TEST_ARTIFACTS`` (default ``reports/test-artifacts/``) to look at.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from simcluster.reporting import write_run
from simcluster.reporting.files import normalize_timeline
from simcluster.run import simulate_workload
from simcluster.spec import load_workload

ROOT = Path(__file__).resolve().parents[2]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM = next((p for p in map(shutil.which, BROWSERS) if p), None)
ARTIFACTS = Path(os.environ.get("SIMCLUSTER_TEST_ARTIFACTS", ROOT / "reports" / "test-artifacts"))

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium not found (Debian: apt-get install -y chromium); "
                             "report.html was not rendered in a browser")

# Appended to a copy of the page (the page itself has no scripts): records, once the page has
# loaded, how many images it has, how many decoded, and their sizes.
PROBE = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.setAttribute('data-images', imgs.length);
  document.body.setAttribute('data-loaded', ok.length);
  document.body.setAttribute('data-sizes', imgs.map(function (i) { return i.naturalWidth + 'x' + i.naturalHeight; }).join(' '));
});
</script>"""


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
           f"--user-data-dir={tmp / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    """A real 4-stage 1F1B run of the toy workload, written with every report."""
    spec = load_workload(ROOT / "workloads" / "toy-8gpu.yaml", overrides=[
        "parallelism.pipeline=4", "parallelism.tensor=1", "parallelism.data=2", "training.global_batch=16",
        "training.micro_batch=1"])
    out = simulate_workload(spec)
    d = tmp_path_factory.mktemp("browser-run")
    write_run(d, normalize_timeline(out.result.timeline), out.summary, spec.resolved_dict(), out.details)
    return d


def test_every_image_loads(report_dir, tmp_path):
    html = (report_dir / "report.html").read_text(encoding="utf-8")
    n_img = len(re.findall(r"<img ", html))
    assert n_img >= 3  # gantt, utilization, memory
    probe = report_dir / "probe.html"
    probe.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    res = _chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
    assert res.returncode == 0, res.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", res.stdout)
    assert body, res.stdout[:500]
    attrs = dict(re.findall(r'data-(\w+)="([^"]*)"', body.group(1)))
    assert attrs.get("images") == str(n_img), attrs
    assert attrs.get("loaded") == str(n_img), f"only {attrs.get('loaded')} of {n_img} images decoded: {attrs}"
    for size in attrs["sizes"].split():
        w, h = map(int, size.split("x"))
        assert w > 500 and h > 200, attrs["sizes"]


def test_screenshot(report_dir, tmp_path):
    import matplotlib.image as mpimg

    shot = tmp_path / "report.png"
    res = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,3000", (report_dir / "report.html").as_uri())
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / "report-html-screenshot.png")
    px = mpimg.imread(shot)[..., :3]
    assert px.shape[:2] == (3000, 1400)
    ink = (px < 0.9).any(axis=-1).mean()  # share of pixels that are not (near) white
    colours = len(np.unique((px[::4, ::4] * 255).astype(np.uint8).reshape(-1, 3), axis=0))
    assert ink > 0.05 and colours > 100, (ink, colours)  # text, tables and plots, not a blank page


HEIGHT_PROBE = """<script>
window.addEventListener('load', function () {
  document.body.setAttribute('data-height', document.documentElement.scrollHeight);
  var imgs = Array.prototype.slice.call(document.images);
  document.body.setAttribute('data-loaded', imgs.filter(function (i) { return i.naturalWidth > 0; }).length);
});
</script>"""


def test_64_stages_page_stays_short(tmp_path_factory, tmp_path):
    """At 64 stages the page keeps its length (the issue measured 14,800 px): tables fold, plots
    summarise; every image still loads."""
    spec = load_workload(ROOT / "workloads" / "toy-8gpu.yaml", overrides=[
        "model.layers=64", "parallelism.pipeline=64", "parallelism.tensor=1", "parallelism.data=1",
        "cluster.nodes=8", "training.global_batch=128", "training.micro_batch=1"])
    out = simulate_workload(spec)
    d = tmp_path_factory.mktemp("browser-64")
    write_run(d, out.result.timeline, out.summary, spec.resolved_dict(), out.details)
    html = (d / "report.html").read_text(encoding="utf-8")
    probe = d / "probe.html"
    probe.write_text(html.replace("</body>", HEIGHT_PROBE + "</body>"), encoding="utf-8")
    res = _chromium(tmp_path, "--virtual-time-budget=10000", "--window-size=1300,1000", "--dump-dom", probe.as_uri())
    assert res.returncode == 0, res.stderr[-2000:]
    attrs = dict(re.findall(r'data-(\w+)="([^"]*)"', re.search(r"<body([^>]*)>", res.stdout).group(1)))
    assert int(attrs["loaded"]) == len(re.findall(r"<img ", html)) >= 4
    assert int(attrs["height"]) < 10_000, attrs
    shot = tmp_path / "report-64.png"
    res = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1300,9000", (d / "report.html").as_uri())
    assert res.returncode == 0 and shot.exists()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / "report-html-64-stages.png")
