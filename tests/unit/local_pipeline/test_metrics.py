"""Per-minute metric aggregation, the time shift, and EMF extraction (no moto)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

from local_pipeline.metrics import EmfLogSink, MetricsRecorder

T0 = 1_768_467_600_000  # 2026-01-15T09:00:00Z, a minute boundary


class MemoryCloudWatch:
    def __init__(self) -> None:
        self.data: list[tuple[str, dict[str, Any]]] = []

    def put_metric_data(self, Namespace: str, MetricData: list[dict[str, Any]]) -> None:  # noqa: N803
        self.data += [(Namespace, d) for d in MetricData]


def test_observations_are_aggregated_per_minute_and_shifted_so_the_last_moment_is_now() -> None:
    recorder = MetricsRecorder()
    dims = {"FunctionName": "f"}
    recorder.add("AWS/Lambda", "Duration", 10, "Milliseconds", T0 + 1_000, dims)
    recorder.add("AWS/Lambda", "Duration", 30, "Milliseconds", T0 + 59_000, dims)
    recorder.add("AWS/Lambda", "Duration", 5, "Milliseconds", T0 + 125_000, dims)
    cloudwatch = MemoryCloudWatch()
    now = 1_800_000_000_000
    assert recorder.put(cloudwatch, now_ms=now) == 2
    by_time = sorted(cloudwatch.data, key=lambda item: item[1]["Timestamp"])
    first, last = (d for _, d in by_time)
    assert first["StatisticValues"] == {"SampleCount": 2.0, "Sum": 40.0, "Minimum": 10.0, "Maximum": 30.0}
    assert first["Dimensions"] == [{"Name": "FunctionName", "Value": "f"}]
    shift = now - (T0 + 125_000)
    assert first["Timestamp"] == datetime.fromtimestamp((T0 + shift) / 1000, UTC)
    # the minute of the last moment, shifted, never after the put itself
    assert last["Timestamp"] == datetime.fromtimestamp((T0 + 120_000 + shift) / 1000, UTC)
    assert last["Timestamp"] <= datetime.fromtimestamp(now / 1000, UTC)
    assert len(recorder) == 0 and recorder.datapoints_put == 2


def test_emf_lines_become_metrics_and_everything_is_forwarded() -> None:
    recorder = MetricsRecorder()
    forward = io.StringIO()
    sink = EmfLogSink(recorder=recorder, now_ms=lambda: T0, forward=forward)
    blob = {
        "_aws": {
            "Timestamp": 0,
            "CloudWatchMetrics": [
                {
                    "Namespace": "CarouselSalesPipeline",
                    "Dimensions": [["service"]],
                    "Metrics": [
                        {"Name": "SalesProcessed", "Unit": "Count"},
                        {"Name": "SalesDuplicate", "Unit": "Count"},
                    ],
                }
            ],
        },
        "service": "sales-fanout",
        "SalesProcessed": [3.0, 2.0],
        "SalesDuplicate": 1.0,
    }
    text = '{"level":"INFO","message":"batch done"}\n' + json.dumps(blob)
    sink.write(text[:50])  # lines may arrive in pieces
    sink.write(text[50:] + "\n")
    assert sink.totals == {"SalesProcessed": 5.0, "SalesDuplicate": 1.0}
    assert recorder.total("CarouselSalesPipeline", "SalesProcessed", service="sales-fanout") == 5.0
    assert forward.getvalue() == text + "\n"
