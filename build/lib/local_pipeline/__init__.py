"""The whole pipeline on one machine: a local runtime faithful to the deployed services, driving the real Lambdas.

Modules, one per concern: :mod:`.config` (the stream's configuration, read from the shared declarations),
:mod:`.eventbridge` (rule pattern matching), :mod:`.generator` (seeded bursts, streamed), :mod:`.aws` (embedded
moto or an endpoint), :mod:`.buffer_queue` (the SQS buffer queue and Lambda's event source mapping),
:mod:`.lambda_service` (invocations on the simulated clock, asynchronous retries), :mod:`.clock` (the simulated
clock), :mod:`.client_errors`, :mod:`.prefixes` (Firehose prefix expressions), :mod:`.parquet` (OpenX-like JSON
to Parquet), :mod:`.firehose` (the local delivery stream: quotas, transform invocations, partitions and
delivery), :mod:`.metrics` (CloudWatch metrics per simulated minute, EMF extraction), :mod:`.out_folder` (the
``--out`` folder and its manifest), :mod:`.progress`, :mod:`.dashboards` (Athena SQL on DuckDB), :mod:`.audit`
and :mod:`.runner` (a run: options, wiring, the simulation loop, the end phase, the summary). The CLI over it
is :mod:`sales_pipeline`.
"""
