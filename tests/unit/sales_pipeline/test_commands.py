"""The monitor and report commands' faces: registered in the CLI, one-line errors, never a real account."""

from __future__ import annotations

from pathlib import Path

import pytest

from local_pipeline import out_folder
from operations import monitor
from operations import outputs as stack_outputs
from sales_pipeline.cli import COMMANDS, build_parser, main


def test_monitor_and_report_are_registered_commands() -> None:
    # operations.COMMAND_MODULES is gone: the CLI's own table names each command's module
    assert {"sales_pipeline.commands.monitor", "sales_pipeline.commands.report"} <= {c.module for c in COMMANDS}
    help_text = build_parser().format_help()
    assert "monitor" in help_text and "report" in help_text


def test_monitor_help_states_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["monitor", "--help"])
    text = capsys.readouterr().out
    for line in ("0  OK", "1  WARNING", "2  CRITICAL", "3  UNKNOWN"):
        assert line in text


def test_the_local_run_marker_is_the_runners() -> None:
    assert monitor.LOCAL_RUN_MARKER == out_folder.MANIFEST


@pytest.mark.parametrize("command", ["monitor", "report"])
def test_outputs_of_an_in_process_run_are_refused_not_looked_up_in_an_account(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the outputs a run on in-process moto leaves (no endpoint_url) beside its lake marker
    (tmp_path / out_folder.MANIFEST).write_text("x", encoding="utf-8")
    stack_outputs.write(tmp_path / "outputs.json", {"delivery_stream_name": "s", "aws_region": "us-east-1"})
    extra = ["--html", str(tmp_path / "r.html")] if command == "report" else []
    # WHEN the command is pointed at them THEN a one-line error, before any client is made
    status = main([command, "--outputs", str(tmp_path / "outputs.json"), *extra])
    assert status == (3 if command == "monitor" else 2)
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "in-process moto" in error and "--endpoint-url" in error
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize(("option", "value"), [("--since", "1y"), ("--watch", "0"), ("--watch", "often")])
def test_bad_monitor_options_are_unknown_with_one_line(
    option: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["monitor", "--outputs", str(tmp_path / "none.json"), option, value]) == 3
    assert f"{option} {value!r}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "purpose"),
    [
        (["errors", "reprocess"], "reprocess its error records"),
        (["errors", "list"], "list its error records"),
        (["dlq", "list"], "read its dead-letter queue"),
        (["dlq", "replay"], "read its dead-letter queue"),
        (["send", "--events", "events.jsonl"], "send to its bus"),
    ],
)
def test_recovery_commands_refuse_an_ended_local_run_in_one_line(
    command: list[str], purpose: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the outputs an in-process run left (no endpoint_url) beside its lake marker
    (tmp_path / out_folder.MANIFEST).write_text("x", encoding="utf-8")
    outputs = tmp_path / "outputs.json"
    stack_outputs.write(outputs, {"delivery_stream_name": "s", "aws_region": "us-east-1"})
    # WHEN a recovery command is pointed at them
    status = main([*command, "--outputs", str(outputs)])
    # THEN one line says why (not Firehose's ResourceNotFoundException), before any client is made
    assert status != 0
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "in-process moto" in error and "--endpoint-url" in error and purpose in error


def test_run_without_the_local_runtime_installed_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an install of the operator commands alone (`pip install '.[operations]'`): no moto, pyarrow, ...
    import sales_pipeline.cli as cli_module

    real = cli_module.importlib.import_module

    def without_local(name: str) -> object:
        if name == "sales_pipeline.commands.run":
            raise ModuleNotFoundError("No module named 'time_machine'", name="time_machine")
        return real(name)

    monkeypatch.setattr(cli_module.importlib, "import_module", without_local)
    # WHEN `run` is asked for, THEN one line says what is missing and how to install it, exit 2
    assert main(["run", "--help"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs the local runtime" in err and "[local]" in err


@pytest.mark.parametrize(("command", "status"), [(["monitor"], 3), (["errors", "reprocess", "--dry-run"], 2)])
def test_a_bad_delivery_stream_names_output_is_one_line_naming_it(
    command: list[str], status: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN outputs whose delivery_stream_names is not a list of stream names
    outputs = tmp_path / "outputs.json"
    stack_outputs.write(
        outputs,
        {
            "delivery_stream_name": "s",
            "delivery_stream_names": "s",
            "aws_region": "us-east-1",
            "firehose_error_prefix": "s3://lake/errors/",
        },
    )
    # WHEN a command that reads every stream is pointed at them THEN one line names the output, before any call
    assert main([*command, "--outputs", str(outputs)]) == status
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "output 'delivery_stream_names' is 's', expected a non-empty list of stream names" in error
