"""``sales-pipeline``: the command-line face over the operator library and the local runtime.

The top layer of the project: :mod:`sales_pipeline.cli` finds the command, :mod:`sales_pipeline.options` declares
the options and argument types the commands share, and each module in :mod:`sales_pipeline.commands` parses one
command's arguments, calls a library function (:mod:`operations` or :mod:`local_pipeline`) and prints. Commands
are loaded lazily: ``sales-pipeline monitor --help`` imports the monitor's command module and nothing of the
local runtime (moto, pyarrow, DuckDB, numpy).
"""
