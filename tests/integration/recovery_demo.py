"""Run the recovery commands against a seeded moto_server and print what they print (the README's examples).

    .venv/bin/python -m tests.integration.recovery_demo

Starts a moto_server on 127.0.0.1, creates the stack's resources and seeds them exactly as the integration
tests do (one dead letter of each kind, one error object of each type, a JSONL burst), then runs each command
as a user would (the ``sales-pipeline`` console script, ``--outputs`` the written outputs.json) and stops
the server.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.integration.operations.test_operations_dlq import seed_dead_letters
from tests.integration.operations.test_operations_errors import seed_error_objects
from tests.integration.recovery_stack import moto_stack, valid_events


def main() -> int:
    """Seed, run every command, print each with its output and exit status."""
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    os.environ.pop("AWS_PROFILE", None)
    script = Path(sys.executable).with_name("sales-pipeline")
    with tempfile.TemporaryDirectory() as folder, moto_stack(Path(folder)) as stack:
        roles = seed_dead_letters(stack)
        seed_error_objects(stack)
        burst = Path(folder) / "burst.jsonl"
        burst.write_text("".join(json.dumps(event) + "\n" for event in valid_events(200, seed=9)))
        bad = Path(folder) / "bad.jsonl"
        lines = burst.read_text().splitlines()[:4]
        lines[2] = "{not json"
        bad.write_text("\n".join(lines) + '\n{"source": "carousel.products", "detail": {}}\n')
        commands = [
            "dlq list",
            f"dlq show {roles['large']['id']}",
            "dlq replay --dry-run",
            "dlq replay",
            "dlq replay --rejected",
            "errors list",
            "errors reprocess",
            "errors reprocess --type activePartitionExceeded --tenant luxe-resale",
            "errors list",
            "send --events burst.jsonl --rate 100 --dry-run",
            "send --events burst.jsonl --rate 100",
            "send --events burst.jsonl --concurrency 8",
            "send --events bad.jsonl",
        ]
        for command in commands:
            argv = [str(script), *shlex.split(command), "--outputs", str(stack.outputs)]
            sys.stdout.write(f"\n$ sales-pipeline {command} --outputs outputs.json\n")
            sys.stdout.flush()
            result = subprocess.run(argv, capture_output=True, text=True, cwd=folder, check=False)
            sys.stdout.write(result.stdout + result.stderr + f"[exit status {result.returncode}]\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
