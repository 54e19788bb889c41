"""Operator commands: they talk to a deployed stack (or a local run on a moto_server) through boto3 only.

Kept apart from ``local_pipeline`` because they run against real accounts: nothing here imports the local
runtime or the CLI (not even inside a function), nor moto, pyarrow or DuckDB. Every command finds the stack's
resources in the JSON that ``terraform output -json`` prints (:mod:`operations.outputs`) and builds its clients
with the AWS CLI's conventions (:mod:`operations.aws`). One module (or package) per command, with typed
functions: parsing and printing are the CLI's (``sales_pipeline.commands``), so nothing here imports argparse.
"""

from __future__ import annotations
