from __future__ import annotations

from pathlib import Path

import pytest

from local_pipeline.cli import build_parser, main


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"]])
def test_every_command_has_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 0
    assert "usage: sales-pipeline" in capsys.readouterr().out


def test_run_defaults_are_the_readme_command() -> None:
    args = build_parser().parse_args(["run"])
    assert args.events_file is None
    assert args.endpoint_url is None
    assert args.dashboards is True


@pytest.mark.parametrize("argv", [["run", "-n", "0"], ["run", "--burst-seconds", "-1"], []])
def test_bad_arguments_are_rejected(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2


def test_a_foreign_out_folder_is_refused_with_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    assert main(["run", "-n", "1", "--out", str(tmp_path)]) == 2
    assert "not empty and was not written by sales-pipeline" in capsys.readouterr().err
    assert (tmp_path / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    "argv", [["run", "-n", "5", "--events", "e.jsonl"], ["run", "--events", "e.jsonl", "--count", "5"]]
)
def test_a_count_with_an_events_file_is_refused_not_ignored(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_the_lake_folder_is_marked_as_soon_as_it_is_created(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "lake"
    missing = tmp_path / "no-such-events.jsonl"
    assert main(["run", "--events", str(missing), "--out", str(out)]) == 2  # fails after the folder was made
    assert (out / ".sales-pipeline-lake").exists()
    assert main(["run", "--events", str(missing), "--out", str(out)]) == 2
    assert "cannot read events" in capsys.readouterr().err  # not "not written by sales-pipeline"
