"""The local Firehose retries a failed S3 delivery as the service does: every 5 s while it keeps the data (24 h)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from local_pipeline.firehose import S3_RETRY_INTERVAL_MS, S3_RETRY_LIMIT_MS
from tests.unit.local_pipeline.test_firehose import Harness, MemoryS3, ok_transform, record


class FailingS3(MemoryS3):
    """PutObject fails ``failures`` times (503 SlowDown), then stores."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.attempts = 0

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> None:  # noqa: N803
        self.attempts += 1
        if self.failures > 0:
            self.failures -= 1
            raise ClientError(
                {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "PutObject"
            )
        super().put_object(Bucket, Key, Body)


def harness(s3: MemoryS3, transform: Any = None) -> Harness:
    h = Harness(transform or ok_transform())
    h.s3 = s3
    h.stream._s3 = s3
    return h


def test_a_failed_s3_put_is_retried_until_it_succeeds_and_nothing_is_lost() -> None:
    s3 = FailingS3(failures=3)
    h = harness(s3)
    h.put(record("a"), record("b"))

    h.stream.close()

    assert h.stream.stats.rows_delivered == 2
    assert len(h.lake()) == 1
    assert h.stream.stats.s3_put_retries == 3
    assert h.stream.stats.s3_max_retry_wait_ms == 3 * S3_RETRY_INTERVAL_MS
    assert h.stream.stats.s3_discarded_records == 0


def test_error_objects_are_retried_too() -> None:
    def failing(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {
            "records": [
                {"recordId": r["recordId"], "result": "ProcessingFailed", "data": r["data"]} for r in event["records"]
            ]
        }

    s3 = FailingS3(failures=2)
    h = harness(s3, failing)
    h.put(record("a"))
    h.stream.close()
    assert len(s3.error_lines("processing-failed")) == 1
    assert h.stream.stats.error_objects_written == 1


def test_after_24_hours_of_failures_firehose_discards_the_data_and_says_how_much() -> None:
    s3 = FailingS3(failures=10**9)
    h = harness(s3)
    h.put(record("a"), record("b"))

    h.stream.close()

    assert s3.attempts == S3_RETRY_LIMIT_MS // S3_RETRY_INTERVAL_MS + 1
    assert h.stream.stats.s3_discarded_records == 2
    assert h.stream.stats.rows_delivered == 0 and h.lake() == {}
