"""monitor's checks of one delivery stream: its Firehose metrics (incoming against the quotas, throttling,
delivery and freshness, processing, conversion, partitions). A stack with several streams judges each.

A stream to an Iceberg table (``lake_table_format = iceberg``) is judged on the DeliveryToIceberg.* metrics
instead (freshness, rows delivered and failed); it converts nothing and has no dynamic partitions.

Pure: an :class:`~operations.monitor.collect.Observation` of one stream in
(:meth:`~operations.monitor.collect.Observation.for_stream`), :class:`~operations.monitor.verdicts.Check` rows out.
"""

from __future__ import annotations

from datetime import timedelta

from operations import metrics
from operations.monitor.collect import Observation, Series
from operations.monitor.verdicts import Check, Thresholds, Verdict

__all__ = ["count_check", "stream_checks", "transform_failed_check"]


def stream_checks(observation: Observation, thresholds: Thresholds, *, transform_failed: bool = True) -> list[Check]:
    """The checks of the one stream ``observation`` holds, in monitor's order; ``transform_failed`` puts the
    stack's TransformRecordsFailed check where a one-stream stack has always had it (after the transform's)."""
    checks: list[Check] = []
    if not observation.stream_known:
        checks.append(
            Check(
                "Firehose metrics",
                Verdict.UNKNOWN,
                "none",
                "any AWS/Firehose metric for the stream",
                f"CloudWatch holds no AWS/Firehose metric for stream {observation.stack.delivery_stream!r} "
                f"in {observation.stack.region or 'this region'}: wrong outputs, region or stream?",
            )
        )
    checks += _incoming_checks(observation, thresholds)
    if observation.stack.lake_table_format == "iceberg":
        checks += _iceberg_delivery_checks(observation, thresholds)
        checks += _processing_checks(observation, transform_failed=transform_failed, conversion=False)
        return checks
    checks += _delivery_checks(observation, thresholds)
    checks += _processing_checks(observation, transform_failed=transform_failed)
    checks += _partition_checks(observation, thresholds)
    return checks


def transform_failed_check(observation: Observation) -> Check:
    """The transform's own count of records it failed (one EMF metric for the stack, whatever the streams)."""
    return count_check(
        "TransformRecordsFailed",
        observation.get("transform_records_failed"),
        Verdict.WARN,
        "the transform failed records: they are under the error prefix (processing-failed)",
        none_means="none reported",
    )


def _incoming_checks(observation: Observation, thresholds: Thresholds) -> list[Check]:
    documented = metrics.documented_stream_limits(observation.stack.region)
    checks = []
    for kind, metric_key, limit_key, unit in (
        ("records", "incoming_records", "records_per_second_limit", "records/s"),
        ("bytes", "incoming_bytes", "bytes_per_second_limit", "bytes/s"),
        ("put_requests", "incoming_put_requests", "put_requests_per_second_limit", "requests/s"),
    ):
        metric, limit_metric = metrics.ALL[metric_key], metrics.ALL[limit_key]
        limit_series = observation.get(limit_key)
        if limit_series.empty:
            limit, limit_source = documented[kind], f"documented default for {observation.stack.region}"
        else:
            limit, limit_source = limit_series.lowest, limit_metric.name
        threshold = (
            f"warn > {thresholds.incoming_limit_percent:g}%, fail >= 100% of {limit:,.0f} {unit} ({limit_source})"
        )
        series = observation.get(metric_key)
        name = f"{metric.name} vs {limit_metric.name}"
        if series.empty:
            checks.append(Check(name, Verdict.NO_DATA, "no data", threshold, "nothing came in"))
            continue
        rate = series.peak / observation.window.period
        share = 100 * rate / limit if limit else 0.0
        verdict = (
            Verdict.FAIL if share >= 100 else Verdict.WARN if share > thresholds.incoming_limit_percent else Verdict.OK
        )
        value = f"{share:.2f}% (peak {rate:,.2f} {unit} over 5 min)"
        detail = "" if verdict is Verdict.OK else "batch more per call or ask AWS to raise the quota"
        checks.append(Check(name, verdict, value, threshold, detail))
    throttled = observation.get("throttled_records")
    checks.append(
        count_check(
            "ThrottledRecords",
            throttled,
            Verdict.WARN,
            "Firehose refused records over its quota; the fan-out resends them",
            none_means="none reported",
        )
    )
    return checks


def count_check(name: str, series: Series, verdict: Verdict, problem: str, *, none_means: str) -> Check:
    """A failure counter: any count above 0 is ``verdict``; no datapoint means nothing was counted."""
    if series.empty:
        return Check(name, Verdict.NO_DATA, "no data", "> 0", none_means)
    total = series.total
    if total > 0:
        return Check(name, verdict, f"{total:,.0f}", "> 0", problem)
    return Check(name, Verdict.OK, "0", "> 0")


def _delivery_gap(observation: Observation, thresholds: Thresholds) -> Check | None:
    """FAIL when records came in earlier than the freshness threshold allows and nothing was delivered."""
    incoming = observation.get("incoming_records")
    if incoming.empty or incoming.total <= 0:
        return None
    first = incoming.timestamps[0]
    overdue = observation.window.end - timedelta(seconds=thresholds.freshness_seconds + observation.window.period)
    if first > overdue:
        return None
    return Check(
        "delivery",
        Verdict.FAIL,
        "no data",
        f"a delivery within {thresholds.freshness_seconds} s of incoming records",
        f"{incoming.total:,.0f} records came in since {first:%H:%M} UTC but Firehose reported no delivery",
    )


def _no_data(name: str, threshold: str, gap: Check | None, detail: str = "no delivery in the window") -> Check:
    if gap is not None:
        return Check(name, Verdict.FAIL, "no data", threshold, gap.detail)
    return Check(name, Verdict.NO_DATA, "no data", threshold, detail)


def _delivery_checks(observation: Observation, thresholds: Thresholds) -> list[Check]:
    gap = _delivery_gap(observation, thresholds)
    checks = []
    success = observation.get("delivery_success")
    threshold = "warn < 1 in any 5 min, fail when the latest is 0"
    if success.empty:
        checks.append(_no_data("DeliveryToS3.Success", threshold, gap))
    elif success.latest == 0:
        checks.append(Check("DeliveryToS3.Success", Verdict.FAIL, "0 (latest)", threshold, "S3 puts are failing"))
    elif success.lowest < 1:
        value = f"{success.lowest:.3f} (lowest)"
        checks.append(Check("DeliveryToS3.Success", Verdict.WARN, value, threshold, "some S3 puts failed (retried)"))
    else:
        checks.append(Check("DeliveryToS3.Success", Verdict.OK, f"{success.lowest:g}", threshold))

    checks.append(_freshness_check(observation, thresholds, "data_freshness", "S3", gap))

    delivered = observation.get("delivered_records")
    if delivered.empty:
        checks.append(_no_data("DeliveryToS3.Records", "records delivered while records come in", gap))
    else:
        incoming = observation.get("incoming_records").total
        value = f"{delivered.total:,.0f} (incoming {incoming:,.0f})"
        checks.append(Check("DeliveryToS3.Records", Verdict.OK, value, "records delivered while records come in"))
    return checks


def _freshness_check(
    observation: Observation, thresholds: Thresholds, key: str, target: str, gap: Check | None
) -> Check:
    """The DataFreshness check of ``key`` (DeliveryToS3 or DeliveryToIceberg), against the alarm's threshold."""
    name = metrics.ALL[key].name
    freshness = observation.get(key)
    threshold = (
        f"{thresholds.freshness_seconds} s (1.5 x {thresholds.buffering_interval_seconds} s buffering + processor "
        "buffer + 60 s, as the alarm)"
    )
    if freshness.empty:
        return _no_data(name, threshold, gap)
    if freshness.latest > thresholds.freshness_seconds:
        value = f"{freshness.latest:,.0f} s (latest)"
        detail = f"delivery to {target} is falling behind: the oldest record waits longer than normal delivery takes"
        return Check(name, Verdict.FAIL, value, threshold, detail)
    if freshness.peak > thresholds.freshness_seconds:
        value = f"{freshness.peak:,.0f} s (peak), {freshness.latest:,.0f} s latest"
        detail = "delivery fell behind earlier in the window and has caught up"
        return Check(name, Verdict.WARN, value, threshold, detail)
    return Check(name, Verdict.OK, f"{freshness.peak:,.0f} s (peak)", threshold)


def _iceberg_delivery_checks(observation: Observation, thresholds: Thresholds) -> list[Check]:
    """Delivery to the Iceberg table: commits, freshness, rows committed and rows refused (to the error prefix)."""
    gap = _delivery_gap(observation, thresholds)
    checks = []
    commits = observation.get("iceberg_delivery_success")
    threshold = "commits while records come in"
    if commits.empty:
        checks.append(_no_data("DeliveryToIceberg.Success", threshold, gap))
    else:
        checks.append(Check("DeliveryToIceberg.Success", Verdict.OK, f"{commits.total:,.0f} commits", threshold))
    checks.append(_freshness_check(observation, thresholds, "iceberg_data_freshness", "the Iceberg table", gap))
    rows = observation.get("iceberg_successful_rows")
    if rows.empty:
        checks.append(_no_data("DeliveryToIceberg.SuccessfulRowCount", "rows committed while records come in", gap))
    else:
        incoming = observation.get("incoming_records").total
        value = f"{rows.total:,.0f} (incoming {incoming:,.0f})"
        checks.append(
            Check("DeliveryToIceberg.SuccessfulRowCount", Verdict.OK, value, "rows committed while records come in")
        )
    checks.append(
        count_check(
            "DeliveryToIceberg.FailedRowCount",
            observation.get("iceberg_failed_rows"),
            Verdict.WARN,
            "rows the table refused: they are under the error prefix (the transform's row no longer fits the table)",
            none_means="none reported",
        )
    )
    return checks


def _processing_checks(observation: Observation, *, transform_failed: bool, conversion: bool = True) -> list[Check]:
    checks = []
    success = observation.get("processing_success")
    threshold = "warn < 1 in any 5 min (as the alarm), fail when the latest is 0"
    if success.empty:
        checks.append(Check("ExecuteProcessing.Success", Verdict.NO_DATA, "no data", threshold, "no transform ran"))
    elif success.latest == 0:
        detail = "every transform invocation is failing: records go to processing-failed after the retries"
        checks.append(Check("ExecuteProcessing.Success", Verdict.FAIL, "0 (latest)", threshold, detail))
    elif success.lowest < 1:
        detail = "some transform invocations failed (Firehose retries them)"
        value = f"{success.lowest:.3f} (lowest)"
        checks.append(Check("ExecuteProcessing.Success", Verdict.WARN, value, threshold, detail))
    else:
        checks.append(Check("ExecuteProcessing.Success", Verdict.OK, f"{success.lowest:g}", threshold))
    if transform_failed:
        checks.append(transform_failed_check(observation))
    if not conversion:
        return checks
    checks.append(
        count_check(
            "FailedConversion.Records",
            observation.get("failed_conversion_records"),
            Verdict.WARN,
            "records failed Parquet conversion: they are under the error prefix (format-conversion-failed)",
            none_means="none reported",
        )
    )
    return checks


def _partition_checks(observation: Observation, thresholds: Thresholds) -> list[Check]:
    count, limit_series = observation.get("partition_count"), observation.get("active_partitions_limit")
    if limit_series.empty:
        limit, source = float(thresholds.active_partitions_limit), "pipeline.json active_partitions_limit"
    else:
        limit, source = limit_series.lowest, "ActivePartitionsLimit"
    threshold = f"warn >= {thresholds.partitions_warn_percent:g}%, fail >= 100% of {limit:,.0f} ({source})"
    name = "PartitionCount vs ActivePartitionsLimit"
    if count.empty:
        checks = [Check(name, Verdict.NO_DATA, "no data", threshold, "no partitioned delivery in the window")]
    else:
        share = 100 * count.peak / limit if limit else 0.0
        verdict = (
            Verdict.FAIL
            if share >= 100
            else Verdict.WARN
            if share >= thresholds.partitions_warn_percent
            else Verdict.OK
        )
        detail = "" if verdict is Verdict.OK else "ask AWS to raise ActivePartitionsLimit before records overflow"
        checks = [Check(name, verdict, f"{count.peak:,.0f} ({share:.1f}%)", threshold, detail)]
    exceeded = observation.get("partition_count_exceeded")
    if exceeded.empty:
        checks.append(
            Check("PartitionCountExceeded", Verdict.NO_DATA, "no data", ">= 1 (as the alarm)", "none reported")
        )
    elif exceeded.peak >= 1:
        detail = "records over the partition limit go to the error prefix"
        checks.append(
            Check("PartitionCountExceeded", Verdict.FAIL, f"{exceeded.peak:g}", ">= 1 (as the alarm)", detail)
        )
    else:
        checks.append(Check("PartitionCountExceeded", Verdict.OK, "0", ">= 1 (as the alarm)"))
    return checks
