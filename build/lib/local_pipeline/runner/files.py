"""The files a run writes at the top of ``--out`` (beside the mirrored lake)."""

from __future__ import annotations

from local_pipeline import out_folder

__all__ = ["DEAD_LETTERS_FILE", "LAKE_MARKER", "OUTPUTS_FILE", "REPORT_FILE", "SUMMARY_FILE"]

#: The stack's outputs, in ``terraform output -json``'s shape: what the operator commands read.
OUTPUTS_FILE = "outputs.json"
SUMMARY_FILE = "summary.json"
#: The self-contained HTML report (``sales-pipeline report``).
REPORT_FILE = "report.html"
#: Every message the dead-letter queue received, one body a line.
DEAD_LETTERS_FILE = "dead_letters.jsonl"
#: The manifest that marks a folder as a run's (operations.monitor refuses outputs of an ended in-process run).
LAKE_MARKER = out_folder.MANIFEST
