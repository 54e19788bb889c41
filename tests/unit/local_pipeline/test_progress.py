from __future__ import annotations

import io

from local_pipeline.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_with_rate_and_eta() -> None:
    out = Terminal()
    progress = Progress(200, out, detail=lambda: "processed 7")
    for done in range(1, 201):
        progress.update(done)
    progress.close()
    text = out.getvalue()
    assert "200/200" in text and "100%" in text
    assert "events/s" in text and "processed 7" in text
    assert "<" in text  # the bar's elapsed<remaining


def test_a_pipe_gets_plain_lines_at_every_tenth() -> None:
    out = io.StringIO()
    progress = Progress(100, out, detail=lambda: "processed 3")
    for done in range(1, 101):
        progress.update(done)
    progress.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[-1].startswith("  [100/100] processed 3")
    assert "events/s, about 0 s left" in lines[-1]
    assert "\r" not in out.getvalue()
