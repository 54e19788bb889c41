"""``sales-pipeline run`` on a real pseudo-terminal: the progress bar a person sees, not a fake ``isatty``."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("columns", [120, 0], ids=["sized terminal", "terminal that reports no size"])
def test_a_run_on_a_terminal_draws_a_bar_with_rate_and_eta(tmp_path: Path, columns: int) -> None:
    controller, terminal = pty.openpty()
    # a fresh pseudo-terminal reports 0 x 0 (as `docker run -t` can); a person's terminal has a size
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40 if columns else 0, columns, 0, 0))
    command = [sys.executable, "-m", "sales_pipeline", "run", "-n", "200", "--no-dashboards"]
    command += ["--out", str(tmp_path / "lake")]
    process = subprocess.Popen(command, stdin=terminal, stdout=terminal, stderr=terminal)
    os.close(terminal)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal's other end closed: the run is over
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    assert process.wait(timeout=300) == 0
    screen = b"".join(chunks).decode("utf-8", "replace")
    # the bar redraws its line with carriage returns: count, percentage, rate and elapsed<remaining
    assert "\r" in screen
    assert "200/200" in screen and "100%" in screen
    assert "events/s" in screen
    assert "<" in screen
    assert "processed" in screen  # the outcome counts beside the bar
    assert "Summary (trigger: queue" in screen
