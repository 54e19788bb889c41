"""CloudWatch metrics of the services the local run simulates, aggregated per minute as AWS publishes them.

Every simulated service (the delivery stream, the buffer queue and its event source mapping, the Lambda
functions) records datapoints here under the namespace, name and dimensions AWS uses (``AWS/Firehose``,
``AWS/SQS``, ``AWS/Lambda``). They are kept as one statistic set (SampleCount, Sum, Minimum, Maximum) per
metric, dimensions, unit and simulated minute, so 100,000 events cost a few thousand datapoints, not one per
call. :meth:`MetricsRecorder.put` sends them with ``PutMetricData`` ``StatisticValues``.

Timestamps: the simulated clock starts at the burst's own date. A monitor reads the last hours of wall-clock
time, so :meth:`MetricsRecorder.put` shifts every timestamp by one constant that maps the run's last
simulated moment to the moment of the put; the order and spacing of datapoints are those of the simulation.
"""

from __future__ import annotations

import io
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

import orjson

__all__ = ["PUT_METRIC_DATA_LIMIT", "EmfLogSink", "MetricsRecorder", "Statistic"]

#: Datapoints per PutMetricData call (the API's limit).
PUT_METRIC_DATA_LIMIT = 1000
_MINUTE_MS = 60_000

Dimensions = tuple[tuple[str, str], ...]


@dataclass
class Statistic:
    """One minute of one metric: what ``StatisticValues`` carries."""

    sample_count: int = 0
    total: float = 0.0
    minimum: float = float("inf")
    maximum: float = float("-inf")

    def add(self, value: float) -> None:
        """Fold one observation in."""
        self.sample_count += 1
        self.total += value
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)


class MetricsRecorder:
    """Datapoints of every simulated service, aggregated per simulated minute."""

    def __init__(self) -> None:
        self._cells: dict[tuple[str, str, Dimensions, str, int], Statistic] = {}
        self._lock = threading.Lock()
        self.first_ms: int | None = None
        self.last_ms: int | None = None
        #: Datapoints sent by :meth:`put` so far.
        self.datapoints_put = 0

    def add(  # noqa: PLR0917 - a datapoint's fields, in PutMetricData's order
        self, namespace: str, name: str, value: float, unit: str, at_ms: int, dimensions: Mapping[str, str]
    ) -> None:
        """Record one observation of ``name`` at simulated ``at_ms``."""
        minute = at_ms - at_ms % _MINUTE_MS
        key = (namespace, name, tuple(sorted(dimensions.items())), unit, minute)
        with self._lock:  # the fan-out's thread pool records too (its dead letters)
            cell = self._cells.get(key)
            if cell is None:
                cell = self._cells[key] = Statistic()
            cell.add(float(value))
            self.last_ms = at_ms if self.last_ms is None else max(self.last_ms, at_ms)
            self.first_ms = at_ms if self.first_ms is None else min(self.first_ms, at_ms)

    def __len__(self) -> int:
        return len(self._cells)

    def cells(self, namespace: str | None = None) -> Iterator[tuple[str, str, dict[str, str], int, Statistic]]:
        """``(namespace, name, dimensions, minute_ms, statistic)`` for every recorded minute (tests, summaries)."""
        for (space, name, dims, _unit, minute), cell in self._cells.items():
            if namespace is None or space == namespace:
                yield space, name, dict(dims), minute, cell

    def total(self, namespace: str, name: str, **dimensions: str) -> float:
        """The Sum of ``name`` over the whole run (optionally for one dimension value)."""
        return sum(
            cell.total
            for space, metric, dims, _minute, cell in self.cells(namespace)
            if metric == name and all(dims.get(k) == v for k, v in dimensions.items())
        )

    def put(self, cloudwatch: Any, *, now_ms: int | None = None) -> int:
        """Send every aggregated minute to CloudWatch, shifted so the last simulated moment is ``now_ms``
        (default: the wall clock); return the number of datapoints put and forget them."""
        if not self._cells:
            return 0
        wall_ms = int(time.time() * 1000) if now_ms is None else now_ms
        shift = wall_ms - (self.last_ms if self.last_ms is not None else wall_ms)
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for (namespace, name, dims, unit, minute), cell in self._cells.items():
            by_namespace.setdefault(namespace, []).append(
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in dims],
                    # Never later than the put itself: CloudWatch refuses datapoints from the future.
                    "Timestamp": datetime.fromtimestamp(min(minute + shift, wall_ms) / 1000, UTC),
                    "StatisticValues": {
                        "SampleCount": float(cell.sample_count),
                        "Sum": cell.total,
                        "Minimum": cell.minimum,
                        "Maximum": cell.maximum,
                    },
                    "Unit": unit,
                }
            )
        count = 0
        for namespace, data in by_namespace.items():
            for start in range(0, len(data), PUT_METRIC_DATA_LIMIT):
                cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[start : start + PUT_METRIC_DATA_LIMIT])
            count += len(data)
        self._cells.clear()
        self.datapoints_put += count
        return count


class EmfLogSink(io.TextIOBase):
    """Where the Lambdas' stdout goes during a run: what CloudWatch Logs does with it, locally.

    Every line is passed on to ``forward`` (the ``--lambda-log`` file, or nothing); a line in the Embedded
    Metric Format becomes metrics, as CloudWatch extracts them: recorded in ``recorder`` at the simulated
    now (under the line's namespace and dimensions) and summed per metric name in :attr:`totals`.
    """

    def __init__(
        self, *, recorder: MetricsRecorder | None, now_ms: Callable[[], int], forward: IO[str] | None = None
    ) -> None:
        super().__init__()
        self._recorder = recorder
        self._now_ms = now_ms
        self._forward = forward
        self._partial = ""
        self._lock = threading.Lock()  # handlers log from their thread pools
        #: Sum of every EMF metric seen, by name.
        self.totals: defaultdict[str, float] = defaultdict(float)

    def writable(self) -> bool:
        """A text sink."""
        return True

    def write(self, text: str) -> int:
        """Take what a handler printed or logged."""
        with self._lock:
            self._take(text)
        return len(text)

    def _take(self, text: str) -> None:
        if self._forward is not None:
            self._forward.write(text)
        if '"_aws"' in text or self._partial:
            lines = (self._partial + text).split("\n")
            self._partial = lines.pop()
            for line in lines:
                if '"_aws"' in line:
                    self._extract(line)

    def flush(self) -> None:
        """Flush the forwarded log."""
        if self._forward is not None:
            self._forward.flush()

    def _extract(self, line: str) -> None:
        try:
            blob = orjson.loads(line)
            directives = blob["_aws"]["CloudWatchMetrics"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        for directive in directives:
            names = [d for dims in directive.get("Dimensions", []) for d in dims]
            dimensions = {name: str(blob.get(name, "")) for name in names}
            for metric in directive.get("Metrics", []):
                name = metric.get("Name")
                values = blob.get(name)
                values = values if isinstance(values, list) else [values]
                for value in values:
                    if isinstance(value, int | float):
                        self.totals[name] += value
                        if self._recorder is not None:
                            self._recorder.add(
                                str(directive.get("Namespace", "")),
                                name,
                                value,
                                str(metric.get("Unit", "None")),
                                self._now_ms(),
                                dimensions,
                            )
