"""``python -m sales_pipeline``: the same as the ``sales-pipeline`` console script."""

from sales_pipeline.cli import main

raise SystemExit(main())
