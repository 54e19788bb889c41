"""One module per ``sales-pipeline`` command; each has ``register(parser)`` (see :mod:`sales_pipeline.cli`)."""
