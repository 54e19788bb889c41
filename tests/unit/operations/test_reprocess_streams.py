"""errors reprocess with several delivery streams: records go back to the stream the fan-out's rule names."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from fanout_lambda.errors import DeliveryIncomplete
from fanout_lambda.sale import Sale, firehose_record
from operations.error_records import TransformCheck, parse_object
from operations.errors_prefix import ErrorObject, ErrorPrefix, Reprocessor
from operations.streams import stream_index
from pipeline_config import sale_record
from tests.support import load_event

ROOT = "errors/"
KEY = "errors/processing-failed/year=2026/month=01/day=15/stream-1-x"


def test_stream_index_is_the_fan_outs_stable_hash_modulo_the_count() -> None:
    for sale_id in ("a", "0f3c9e", "sale-123", "é"):
        expected = int.from_bytes(hashlib.blake2b(sale_id.encode(), digest_size=8).digest(), "big")
        assert stream_index(sale_id, 1) == 0
        assert stream_index(sale_id, 3) == expected % 3
    assert stream_index("sale-123", 4) == stream_index("sale-123", 4), "stable"
    ids = [f"sale-{n}" for n in range(400)]
    assert {stream_index(sale_id, 4) for sale_id in ids} == {0, 1, 2, 3}, "every stream gets a share"
    with pytest.raises(ValueError, match="at least 1"):
        stream_index("a", 0)


class _Sender:
    def __init__(self, name: str = "s", fail: bool = False) -> None:
        self.sent: list[bytes] = []
        self.name, self.fail = name, fail

    def send(self, records: list[bytes]) -> None:
        if self.fail:
            raise DeliveryIncomplete(self.name, len(records), ["ServiceUnavailableException"])
        self.sent += records


class _S3:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        return lambda **request: self.calls.append((name, request))


def _records(count: int) -> tuple[ErrorObject, list[bytes]]:
    event = load_event("product_sold")
    datas = []
    for n in range(count):
        detail = {**event["detail"], "productId": f"{event['detail']['productId']}-{n}"}
        datas.append(firehose_record(Sale(f"{event['id'][:-4]}{n:04d}", event["time"], detail)))
    body = "".join(
        json.dumps({"errorCode": "Lambda.FunctionError", "rawData": base64.b64encode(d).decode()}) + "\n" for d in datas
    )
    return ErrorObject(KEY, parse_object(KEY, body.encode(), ROOT)), datas


def _reprocessor(senders: dict[str, Any], s3: Any, *, dry_run: bool = False) -> Reprocessor:
    return Reprocessor(ErrorPrefix(s3, "s3://lake/errors/"), s3, senders, TransformCheck(), dry_run=dry_run)


def test_records_go_back_spread_over_the_streams_by_sale_id_as_they_were() -> None:
    item, datas = _records(24)
    senders = {"sales-history": _Sender(), "sales-history-1": _Sender()}
    s3 = _S3()

    outcome = _reprocessor(senders, s3).reprocess(item)

    assert (outcome.action, outcome.sent) == ("moved", 24)
    for index, (name, sender) in enumerate(senders.items()):
        expected = [d for d in datas if stream_index(sale_record.decode(d)["saleId"], 2) == index]
        assert sender.sent == expected, f"stream {name} gets exactly the records its sale ids name, unchanged"
        assert outcome.by_stream[name] == len(expected)
    assert all(senders[name].sent for name in senders), "24 sales fall on both streams"
    assert [name for name, _ in s3.calls] == ["copy_object", "delete_object"]
    assert outcome.as_json()["sentByStream"] == outcome.by_stream


def test_with_one_stream_every_record_goes_to_it() -> None:
    item, datas = _records(5)
    sender = _Sender()

    outcome = _reprocessor({"sales-history": sender}, _S3()).reprocess(item)

    assert sender.sent == datas and outcome.by_stream == {"sales-history": 5}


def test_a_dry_run_says_where_records_would_go_and_sends_nothing() -> None:
    item, _ = _records(8)
    s3 = _S3()

    outcome = _reprocessor({"a": None, "b": None}, s3, dry_run=True).reprocess(item)

    assert outcome.action == "moved" and sum(outcome.by_stream.values()) == 8
    assert s3.calls == []


def test_a_stream_that_refuses_leaves_the_object_in_place_naming_the_stream() -> None:
    item, _ = _records(24)
    s3 = _S3()

    senders = {"sales-history": _Sender(), "sales-history-1": _Sender("sales-history-1", fail=True)}

    outcome = _reprocessor(senders, s3).reprocess(item)

    assert outcome.action == "failed"
    assert "not accepted by Firehose stream 'sales-history-1'" in outcome.detail
    assert s3.calls == [], "nothing moved or deleted"
