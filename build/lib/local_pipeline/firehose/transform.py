"""The processor: transform Lambda invocations, their responses and retries, and routing by result.

The processor buffer collects records until its size or interval hint is met, then the transform Lambda is
invoked with a batch no larger than the processor buffer size. Invocation errors (a raise, a response that is
not ``{"records": [...]}``, a response past Lambda's payload limit) are retried ``NumberOfRetries`` times;
then every record of the batch fails with ``Lambda.FunctionError``. Each result is matched by record id:
``Ok`` goes on to its partition, ``Dropped`` is counted and discarded, ``ProcessingFailed``, a missing id and a
duplicated id go to the error prefix (``processing-failed``), as does an ``Ok`` entry with invalid base64 data
or partitionKeys that are not strings (``Lambda.InvalidResult``); an entry that is not an object with a string
``recordId`` matches no record (``Lambda.MissingRecordId``).
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from local_pipeline.context import LambdaContext
from local_pipeline.firehose.core import Incoming
from local_pipeline.firehose.delivery import ERROR_MESSAGES, PROCESSING_FAILED, StreamDelivery
from local_pipeline.firehose.limits import TRANSFORM_INVOCATION_TIMEOUT_MS
from local_pipeline.lambda_service import INVOCATION_PAYLOAD_LIMIT

__all__ = ["StreamProcessor", "Transform"]

#: The transform Lambda as Firehose calls it: ``(event, context)`` in, the response out.
Transform = Callable[[dict[str, Any], Any], Any]

_NOT_OK = {
    "Dropped": "Dropped",
    "ProcessingFailed": "Lambda.ProcessingFailedStatus",
    "Duplicated": "Lambda.DuplicatedRecordId",
}


class StreamProcessor(StreamDelivery):
    """The stream's processor layer: batches of the processor buffer through the transform, into partitions."""

    _transform: Transform
    _function_name: str
    _lambda_arn: str
    _stream_arn: str
    _pending: list[Incoming]
    _pending_bytes: int
    _key_names: Sequence[str]

    def _invoke_next_batch(self) -> None:
        batch: list[Incoming] = []
        size = 0
        limit = self.config.processor_buffer_size_bytes
        while self._pending and (not batch or size + len(self._pending[0].data) <= limit):
            item = self._pending.pop(0)
            batch.append(item)
            size += len(item.data)
        self._pending_bytes -= size
        self.process_batch(batch)

    def process_batch(self, batch: Sequence[Incoming]) -> None:
        """Invoke the transform for one batch (with retries) and route every record by its result."""
        event = {
            "invocationId": str(uuid.uuid4()),
            "deliveryStreamArn": self._stream_arn,
            "region": self._region,
            "records": [
                {
                    "recordId": item.record_id,
                    "approximateArrivalTimestamp": item.arrival_ms,
                    "data": base64.b64encode(item.data).decode("ascii"),
                }
                for item in batch
            ],
        }
        attempts = 0
        response: Any = None
        while attempts <= self.config.processor_number_of_retries:
            attempts += 1
            response = self._invoke(event)
            if response is not None:
                break
        if response is None:
            self._fail(batch, "Lambda.FunctionError", attempts)
            return
        self._route(batch, response["records"])

    def _invoke(self, event: dict[str, Any]) -> dict[str, Any] | None:
        self.stats.invocations += 1
        started = time.perf_counter()
        context = LambdaContext(self._function_name, region=self._region, timeout_ms=TRANSFORM_INVOCATION_TIMEOUT_MS)
        try:
            response = self._transform(event, context)
            valid = _valid_response(response)
        except Exception:
            valid = False
            response = None
        self._metric("ExecuteProcessing.Duration", (time.perf_counter() - started) * 1000, "Milliseconds")
        self._metric("ExecuteProcessing.Success", 1 if valid else 0, "Count")
        if not valid:
            self.stats.invocation_errors += 1
            return None
        return dict(response)

    def _route(self, batch: Sequence[Incoming], results: Sequence[Any]) -> None:
        by_id: dict[str, Mapping[str, Any]] = {}
        duplicated: set[str] = set()
        for result in results:
            # An entry that is not an object with a string recordId cannot be matched to a record: the record it
            # was meant for is then missing from the response (Lambda.MissingRecordId), as in the service.
            if not isinstance(result, Mapping) or not isinstance(result.get("recordId"), str):
                continue
            record_id = result["recordId"]
            if record_id in by_id:
                duplicated.add(record_id)
            by_id[record_id] = result
        failures: dict[str, list[Incoming]] = {}
        succeeded_records = succeeded_bytes = 0
        for item in batch:
            code = self._route_one(item, by_id.get(item.record_id), item.record_id in duplicated)
            if code is None or code == "Dropped":
                # SucceedProcessing counts every record the function processed successfully: Ok and Dropped.
                succeeded_records += 1
                succeeded_bytes += len(item.data)
            if code is not None and code != "Dropped":
                failures.setdefault(code, []).append(item)
        self._metric("SucceedProcessing.Records", succeeded_records, "Count")
        self._metric("SucceedProcessing.Bytes", succeeded_bytes, "Bytes")
        for code, items in failures.items():
            self._fail(items, code, 1)

    def _route_one(self, item: Incoming, result: Mapping[str, Any] | None, duplicated: bool) -> str | None:
        """Send one record on; return None when it was buffered, else "Dropped" or the error code."""
        if result is None:
            return "Lambda.MissingRecordId"
        outcome = "Duplicated" if duplicated else result.get("result")
        if outcome != "Ok":
            if outcome == "Dropped":
                self.stats.records_dropped += 1
            return _NOT_OK.get(str(outcome), "Lambda.InvalidResult")
        keys = _partition_keys(result.get("metadata"))
        data = _decoded(result.get("data"))
        if keys is None or data is None:
            return "Lambda.InvalidResult"
        if any(name not in keys for name in self._key_names):
            return "DynamicPartitioning.PartitionKeyMissing"
        self.stats.records_ok += 1
        self._buffer(item, data, keys)
        return None

    def _fail(self, items: Sequence[Incoming], code: str, attempts: int) -> None:
        self.stats.processing_failed += len(items)
        ending = self._clock.now_ms
        lines = [
            {
                "attemptsMade": attempts,
                "arrivalTimestamp": item.arrival_ms,
                "errorCode": code,
                "errorMessage": ERROR_MESSAGES.get(code, code),
                "attemptEndingTimestamp": ending,
                "rawData": base64.b64encode(item.data).decode("ascii"),
                "lambdaArn": self._lambda_arn,
            }
            for item in items
        ]
        self._write_errors(PROCESSING_FAILED, lines, min(item.arrival_ms for item in items))


def _valid_response(response: Any) -> bool:
    if not isinstance(response, Mapping) or not isinstance(response.get("records"), list):
        return False
    # The response of a real invocation is capped at Lambda's payload limit; a bigger one is a function error.
    return len(orjson.dumps(response)) <= INVOCATION_PAYLOAD_LIMIT


def _partition_keys(metadata: Any) -> dict[str, str] | None:
    """``metadata.partitionKeys`` as a dict, ``{}`` when absent, None when not a map of strings to strings."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        return None
    raw = metadata.get("partitionKeys")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        return None
    return dict(raw)


def _decoded(data: Any) -> bytes | None:
    """The record's ``data`` decoded, or None when it is not a string of valid base64."""
    if not isinstance(data, str):
        return None
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None
