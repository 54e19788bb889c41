from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from local_pipeline.generator import BurstSpec, generate
from sales_pipeline.cli import build_parser, main


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
    err = capsys.readouterr().err
    assert "holds 1 file(s) sales-pipeline did not write (precious.txt)" in err
    assert err.count("\n") == 1
    assert (tmp_path / "precious.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.txt"]


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def nothing_left(parent: Path, *expected: str) -> None:
    assert sorted(p.name for p in parent.iterdir()) == sorted(expected)


def test_an_out_path_under_a_file_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x")
    assert main(["run", "-n", "1", "--out", str(tmp_path / "file" / "sub")]) == 2
    assert "is not a folder" in one_line_error(capsys)
    nothing_left(tmp_path, "file")


def test_a_lambda_log_in_a_missing_folder_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "-n", "1", "--out", str(tmp_path / "lake"), "--lambda-log", str(tmp_path / "missing" / "x.log")]
    assert main(argv) == 2
    assert f"folder {tmp_path / 'missing'} does not exist" in one_line_error(capsys)
    nothing_left(tmp_path)


def test_an_endpoint_where_nothing_listens_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["run", "-n", "1", "--out", str(tmp_path / "lake"), "--endpoint-url", f"http://127.0.0.1:{port}"]) == 2
    assert f"nothing answers at 127.0.0.1:{port}" in one_line_error(capsys)
    nothing_left(tmp_path)


def test_a_missing_events_file_is_refused_before_anything_is_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "lake"
    assert main(["run", "--events", str(tmp_path / "no-such-events.jsonl"), "--out", str(out)]) == 2
    assert "cannot read --events" in one_line_error(capsys)
    nothing_left(tmp_path)


def test_an_events_line_that_is_not_an_object_is_bad_input_with_its_line_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"id": "a"}\n[1, 2]\n')
    assert main(["run", "--events", str(events), "--out", str(tmp_path / "lake")]) == 2
    assert "events.jsonl:2: not an event: a JSON array" in one_line_error(capsys)
    nothing_left(tmp_path, "events.jsonl")


@pytest.mark.parametrize("option", ["-n", "--burst-seconds"])
def test_a_count_that_is_not_a_number_says_so(option: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["run", option, "abc"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "expected a whole number of at least 1, got 'abc'" in err
    assert "_positive" not in err


def test_the_trigger_defaults_to_pipeline_json_and_takes_either_value() -> None:
    assert build_parser().parse_args(["run"]).trigger is None  # resolved from pipeline.json by the runner
    assert build_parser().parse_args(["run", "--trigger", "direct"]).trigger == "direct"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--trigger", "sideways"])


def test_generate_writes_the_burst_as_jsonl(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "burst.jsonl"
    assert main(["generate", "-n", "20", "--seed", "3", "--out", str(target)]) == 0
    lines = target.read_text().splitlines()
    expected = [g.event for g in generate(BurstSpec(events=20, seed=3))]
    assert [json.loads(line) for line in lines] == expected
    nothing_left(tmp_path, "burst.jsonl")


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


def test_a_failed_run_leaves_no_folder_it_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN --out under folders that do not exist yet, and a run that fails once it started
    from local_pipeline import runner
    from local_pipeline.runner import pipeline

    def broken(*args: object, **kwargs: object) -> None:
        raise runner.RunError("simulated failure")

    monkeypatch.setattr(pipeline, "build_services", broken)
    assert main(["run", "-n", "1", "--out", str(tmp_path / "a" / "b" / "lake")]) == 2
    nothing_left(tmp_path)
