"""The whole pipeline on one machine: a local runtime faithful to Firehose, driving the real Lambdas.

Modules, one per concern: :mod:`.config` (the stream's configuration, read from the shared declarations),
:mod:`.eventbridge` (rule pattern matching), :mod:`.generator` (seeded bursts), :mod:`.aws` (embedded moto or
an endpoint), :mod:`.prefixes` (Firehose prefix expressions), :mod:`.parquet` (OpenX-like JSON to Parquet),
:mod:`.firehose` (the local delivery stream), :mod:`.dashboards` (Athena SQL on DuckDB), :mod:`.runner` and
:mod:`.cli`.
"""
