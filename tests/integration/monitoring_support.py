"""Helpers for the monitor and report tests: datapoints put as problems, and headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
#: Headless, no network of its own, a throw-away profile (added by :func:`chromium_command`).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-first-run",
    "--hide-scrollbars",
)


def put_datapoint(cloudwatch: Any, namespace: str, name: str, dimension: tuple[str, str], value: float,
                  unit: str = "Count") -> None:  # fmt: skip
    """One datapoint a minute ago (the problems the tests inject)."""
    cloudwatch.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": [{"Name": dimension[0], "Value": dimension[1]}],
                "Timestamp": datetime.now(UTC) - timedelta(minutes=1),
                "Value": value,
                "Unit": unit,
            }
        ],
    )


def chromium() -> str | None:
    """The Chromium executable on the PATH, or None."""
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium_command(binary: str, profile: Path, *args: str) -> list[str]:
    """A headless Chromium command line with a throw-away profile."""
    return [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]


#: Injected into a copy of the report (never into the report itself): after layout, record for every chart
#: its rendered size and how many of its data elements (SVG ids data-*) the browser drew with a real extent.
PROBE = """<script>
document.body.dataset.probe = JSON.stringify([...document.querySelectorAll("figure.chart")].map((figure) => {
  const svg = figure.querySelector("svg");
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  const drawn = svg ? [...svg.querySelectorAll('[id^="data-"]')].filter((element) => {
    const extent = element.getBBox();
    return extent.width > 0 || extent.height > 0;
  }).length : 0;
  return {title: figure.dataset.title, width: box.width, height: box.height, drawn: drawn};
}));
</script>"""


def probe_charts(binary: str, report: Path, workdir: Path) -> list[dict[str, Any]]:
    """Load a probed copy of ``report`` in headless Chromium; return what the probe recorded per chart."""
    probed = workdir / "probed.html"
    probed.write_text(report.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    result = subprocess.run(
        chromium_command(binary, workdir / "profile", "--dump-dom", probed.as_uri()),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    start = result.stdout.index('data-probe="') + len('data-probe="')
    raw = result.stdout[start : result.stdout.index('"', start)]
    import html

    charts: list[dict[str, Any]] = json.loads(html.unescape(raw))
    return charts
