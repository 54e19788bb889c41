"""Property-based tests: malformed events and Firehose records never crash the handlers, never reach the
stores, and whatever the fan-out accepts passes the transform and the Glue schema's types.

Hypothesis generates events by mutating a valid sale (a field dropped, a value replaced by arbitrary JSON or by a
boundary value, the envelope changed, the whole event replaced) and valid sales with drawn values inside the
schema's bounds. The fan-out runs against moto DynamoDB behind a recording proxy, a recording Firehose and a
recording dead-letter queue (moto SQS behind the proxy). For every example:

- the handler returns (it never raises);
- a rejected event wrote nothing to DynamoDB (sales or idempotency table) and nothing to Firehose, and sits in
  the dead-letter queue with its error type, the field and the reason;
- an accepted sale's Firehose record is ``Ok`` in the real transform handler, and the transformed row converts to
  Parquet with the Glue schema without a single failure: nothing accepted upstream lands in the error prefix.

A second property feeds arbitrary Firehose records to the transform: one answer per record id, in order,
``ProcessingFailed`` with the original data, and every ``Ok`` row fits the Glue schema's types.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import math
import os
import string
from collections.abc import Iterator
from typing import Any

import hypothesis
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import glue_schemas
import pipeline_config
from fanout_lambda import handler as fanout
from local_pipeline.parquet import ParquetConverter
from pipeline_config import sale_record
from tests.support import FakeLambdaContext, RecordingFirehose, firehose_event, load_event, read_record
from transform_lambda.handler import lambda_handler as transform

CONTEXT = FakeLambdaContext()
TABLE = glue_schemas.sales_history()
CONVERTER = ParquetConverter(TABLE)
DATA_COLUMNS = [column["name"] for column in TABLE["columns"]]
BASE_EVENT = load_event("product_sold")
DETAIL_FIELDS = sorted(BASE_EVENT["detail"])
ENVELOPE_FIELDS = ["id", "source", "detail-type", "time", "detail", "version", "account", "region", "resources"]
#: DynamoDB calls that write; a rejected event must make none of them.
DYNAMODB_WRITES = frozenset({"put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items"})
#: How many events the fan-out property draws (the brief asks for at least 1,000 events and records all told).
FANOUT_EXAMPLES = 1000
TRANSFORM_EXAMPLES = 400
#: The same examples on every run, so CI is reproducible; HYPOTHESIS_EXPLORE=1 draws new ones (how the
#: mismatches below were found).
DERANDOMIZE = not os.environ.get("HYPOTHESIS_EXPLORE")


class Recording:
    """A proxy over a boto3 client that records the name and parameters of every call made through it."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)
        if not callable(target) or name.startswith(("get_paginator", "get_waiter", "meta")):
            return target

        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            return target(**kwargs)

        return call

    def writes(self) -> list[str]:
        """Names of the write calls made so far."""
        return [name for name, _ in self.calls if name in DYNAMODB_WRITES]

    def dead_letter_bodies(self) -> list[dict[str, Any]]:
        """Message bodies sent through this (SQS) client, single or batched."""
        bodies = []
        for name, kwargs in self.calls:
            if name == "send_message":
                bodies.append(json.loads(kwargs["MessageBody"]))
            elif name == "send_message_batch":
                bodies += [json.loads(entry["MessageBody"]) for entry in kwargs["Entries"]]
        return bodies


# -- strategies ------------------------------------------------------------------------------------------------

_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
)
ARBITRARY_JSON = st.recursive(
    _JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
#: Values that sit on or just past a rule's edge: blanks, control characters, separators, huge and tiny numbers.
BOUNDARY_VALUES = st.sampled_from(
    [
        "",
        " ",
        "\t",
        "\n",
        "\u00a0",
        "\u2028",
        "x\n",
        " x ",
        "..",
        "a/b",
        "a#b",
        "a=b",
        "A" * 65,
        "é",
        "\x00",
        "2025-02-30",
        "2025-13-01",
        "0000-01-01",
        "0001-01-01",
        "9999-12-31",
        "2025-1-1",
        "2025-01-01T10:00:00Z",
        "2025-01-01 10:00:00",
        "20250101T100000Z",
        "2025-W01-1T00:00:00",
        "2025-01-01T10:00:00+14:00",
        "2025-01-01T24:00:00",
        "2025-12-31T23:59:60Z",
        -1,
        -0.0,
        0,
        0.004,
        0.005,
        1e9,
        1e9 + 1,
        2**31,
        2**53 + 1,
        36500,
        36501,
        3.4028234663852886e38,
        3.4028235677973366e38,
        1e-320,
        1e308,
        -1e308,
        True,
        False,
        None,
        [],
        {},
        "1",
        5.0,
        5.5,
    ]
)


def _identifier(max_chars: int) -> st.SearchStrategy[str]:
    return st.from_regex(rf"\A[A-Za-z0-9][A-Za-z0-9._:-]{{0,{max_chars - 1}}}\Z")


@st.composite
def valid_sales(draw: st.DrawFn) -> dict[str, Any]:
    """A sale inside every bound of the schema, with drawn ids, strings, prices, dates and embedding values."""
    event = copy.deepcopy(BASE_EVENT)
    detail = event["detail"]
    event["id"] = draw(_identifier(64))
    # Every year; not the first and last day of datetime's range, where a UTC offset overflows (KNOWN_MISMATCHES).
    moment = draw(st.datetimes(dt.datetime(1, 1, 2), dt.datetime(9999, 12, 30), timezones=st.none() | st.timezones()))
    event["time"] = moment.isoformat()
    detail["productId"] = draw(_identifier(48))
    detail["tenantId"] = draw(st.from_regex(pipeline_config.load()["tenant_id_pattern"].replace("$", r"\Z")))
    detail["category"] = draw(st.text(min_size=1, max_size=32).filter(lambda s: not s.isspace()))
    detail["brand"] = draw(st.text(min_size=1, max_size=48).filter(lambda s: not s.isspace()))
    detail["condition"] = draw(st.from_regex(r"\A\s{0,2}[A-Za-z][A-Za-z _-]{0,23}\s{0,2}\Z"))
    for price in ("listedPrice", "salePrice"):
        detail[price] = draw(st.integers(0, 10**9) | st.floats(0, 1e9, allow_nan=False))
    detail["soldDate"] = draw(st.dates()).isoformat()
    detail["daysToSell"] = draw(st.integers(0, 36500))
    detail["description"] = draw(st.text(max_size=200))
    detail["imageS3Key"] = draw(st.text(max_size=100))
    for optional in ("vendorId", "embeddingId"):
        if draw(st.booleans()):
            detail.pop(optional)
    embedding = list(detail["embedding"])
    number = st.floats(-3.4028234663852886e38, 3.4028234663852886e38, allow_nan=False) | st.integers(-(2**64), 2**64)
    for index, value in draw(st.dictionaries(st.integers(0, len(embedding) - 1), number, max_size=6)).items():
        embedding[index] = value
    detail["embedding"] = embedding
    return event


def _break_embedding(draw: st.DrawFn, embedding: list[Any]) -> list[Any]:
    change = draw(st.sampled_from(["short", "long", "item"]))
    if change == "short":
        return embedding[: draw(st.integers(0, max(len(embedding) - 1, 0)))]
    if change == "long":
        return embedding + [0.5] * draw(st.integers(1, 3))
    if embedding:
        embedding[draw(st.integers(0, len(embedding) - 1))] = draw(ARBITRARY_JSON | BOUNDARY_VALUES)
    return embedding


def _break_once(draw: st.DrawFn, event: dict[str, Any], detail: dict[str, Any]) -> Any:
    """One way of breaking a sale; returns the (possibly replaced) event."""
    how = draw(st.sampled_from(["drop", "replace", "boundary", "envelope", "embedding", "whole"]))
    if how == "drop":
        target = draw(st.sampled_from([event, detail]))
        target.pop(draw(st.sampled_from(sorted(target))), None)
    elif how in {"replace", "boundary"}:
        value = draw(ARBITRARY_JSON if how == "replace" else BOUNDARY_VALUES)
        if draw(st.booleans()):
            detail[draw(st.sampled_from(DETAIL_FIELDS))] = value
        else:
            event[draw(st.sampled_from(ENVELOPE_FIELDS))] = value
    elif how == "envelope":
        field = draw(st.sampled_from(["source", "detail-type"]))
        event[field] = draw(st.sampled_from(["carousel.products.", "Carousel.Products", "carousel.product.listed"]))
    elif how == "embedding":
        detail["embedding"] = _break_embedding(draw, list(detail.get("embedding") or []))
    else:
        return draw(ARBITRARY_JSON)
    return event


@st.composite
def malformed_events(draw: st.DrawFn) -> Any:
    """A sale broken in one (or a few) ways, or something that is not a sale event at all."""
    event: Any = draw(valid_sales())
    for _ in range(draw(st.integers(1, 3))):
        if not isinstance(event, dict) or not isinstance(event.get("detail"), dict):
            break
        event = _break_once(draw, event, event["detail"])
    return event


FANOUT_EVENTS = st.one_of(malformed_events(), valid_sales())


# -- fixtures --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_clients() -> Iterator[dict[str, Any]]:
    """One in-process moto for the whole module (examples share the tables; a repeat sale is a duplicate)."""
    import boto3
    from moto import mock_aws

    from tests import support

    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=support.REGION)
    with mock_aws():
        session = boto3.session.Session(region_name=support.REGION)
        names = support.create_resources(session)
        yield {"dynamodb": session.client("dynamodb"), "sqs": session.client("sqs"), "queue_url": names["queue_url"]}
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _wire(moto_clients: dict[str, Any]) -> tuple[Recording, RecordingFirehose, Recording]:
    from fanout_lambda.settings import FanoutSettings
    from tests import support

    dynamodb, sqs, firehose = Recording(moto_clients["dynamodb"]), Recording(moto_clients["sqs"]), RecordingFirehose()
    settings_ = FanoutSettings(
        sales_table_name=support.SALES_TABLE,
        idempotency_table_name=support.IDEMPOTENCY_TABLE,
        delivery_stream_name=support.STREAM,
        dead_letter_queue_url=moto_clients["queue_url"],
        embedding_dimension=pipeline_config.embedding_dimension(),
    )
    fanout.configure(settings=settings_, dynamodb=dynamodb, firehose=firehose, sqs=sqs)
    return dynamodb, firehose, sqs


# -- helpers ---------------------------------------------------------------------------------------------------


def assert_lands_in_the_lake(record: bytes) -> None:
    """The transform returns ``Ok`` for ``record`` and its row converts to Parquet under the Glue schema."""
    (out,) = transform(firehose_event([record]), CONTEXT)["records"]
    assert out["result"] == "Ok", f"transform rejected a record the fan-out accepted: {record[:300]!r}"
    row_bytes = base64.b64decode(out["data"])
    assert list(orjson.loads(row_bytes)) == DATA_COLUMNS
    converted = CONVERTER.convert([row_bytes])
    assert converted.failures == [], f"Parquet conversion failed: {converted.failures} for {row_bytes[:300]!r}"
    assert converted.rows == 1
    if sale_record.is_compact(record):  # the compact form and its JSON form give exactly the same row
        (as_json,) = transform(firehose_event([orjson.dumps(sale_record.decode(record))]), CONTEXT)["records"]
        assert as_json["result"] == "Ok" and as_json["data"] == out["data"]
        assert as_json["metadata"] == out["metadata"]


def _same_json(left: Any, right: Any) -> bool:
    # NaN never equals itself; compare the canonical dumps instead of the values.
    return json.dumps(left, sort_keys=True, default=repr) == json.dumps(right, sort_keys=True, default=repr)


# -- properties ------------------------------------------------------------------------------------------------


@settings(
    max_examples=FANOUT_EXAMPLES,
    deadline=None,
    derandomize=DERANDOMIZE,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
@given(event=FANOUT_EVENTS)
def test_fanout_never_raises_never_stores_an_invalid_event_and_forwards_only_what_the_lake_accepts(
    moto_clients: dict[str, Any], event: Any
) -> None:
    # GIVEN the fan-out with recording clients
    dynamodb, firehose, sqs = _wire(moto_clients)
    sent = copy.deepcopy(event)

    # WHEN it handles the event (it must not raise: an unexpected exception fails the test)
    result = fanout.lambda_handler(event, CONTEXT)

    # THEN a rejection wrote nothing anywhere but the dead-letter queue, with the reason
    assert result["outcome"] in {"processed", "duplicate", "rejected"}
    hypothesis.event(result["outcome"])  # --hypothesis-show-statistics shows the mix
    if result["outcome"] == "rejected":
        assert dynamodb.writes() == [], "a rejected event reached DynamoDB"
        assert firehose.calls == [], "a rejected event reached Firehose"
        (body,) = sqs.dead_letter_bodies()
        assert body["errorType"] == "InvalidSaleEvent"
        assert body["error"]["field"] and body["error"]["reason"]
        assert _same_json(body["event"], sent)
        return
    # AND an accepted sale is forwarded once and lands in the lake, never in the error prefix
    assert sqs.dead_letter_bodies() == []
    if result["outcome"] == "processed":
        (record,) = firehose.delivered
        assert_lands_in_the_lake(record)
    else:
        assert firehose.calls == []


#: How many SQS batches the queue-mode property draws (1-5 messages each).
BATCH_EXAMPLES = 250
_NOT_JSON_BODIES = st.sampled_from(["", "not json", "{", "[1, 2", "null", "NaN", '{"id": "x"'])


@st.composite
def sqs_bodies(draw: st.DrawFn) -> list[str]:
    """Message bodies of one SQS batch: event JSON (valid or malformed) or text that is not JSON at all."""
    bodies = []
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.integers(0, 5)) == 0:
            bodies.append(draw(_NOT_JSON_BODIES | st.text(max_size=30)))
        else:
            bodies.append(json.dumps(draw(FANOUT_EVENTS)))
    return bodies


def _accepted(body: str) -> bool:
    """Whether a body holds an event the fan-out's validator accepts (the oracle for routing, not for validity)."""
    from fanout_lambda.errors import InvalidSaleEvent
    from fanout_lambda.validation import validator

    try:
        validator(pipeline_config.embedding_dimension()).validate(json.loads(body))
    except (ValueError, InvalidSaleEvent):
        return False
    return True


@settings(
    max_examples=BATCH_EXAMPLES,
    deadline=None,
    derandomize=DERANDOMIZE,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
@given(bodies=sqs_bodies())
def test_sqs_batch_never_raises_retries_nothing_and_routes_every_message(
    moto_clients: dict[str, Any], bodies: list[str]
) -> None:
    # GIVEN an SQS batch of odd bodies and no failing service
    from tests.support import sqs_event

    dynamodb, firehose, sqs = _wire(moto_clients)
    batch = sqs_event([(f"m{i}", body) for i, body in enumerate(bodies)])

    # WHEN the fan-out handles it (it must not raise)
    response = fanout.lambda_handler(batch, CONTEXT)

    # THEN nothing is listed for redelivery: with every service up, each message is settled in one go
    assert response == {"batchItemFailures": []}
    # AND every message the validator refuses is in the DLQ with its reason; no other message is
    refused = [body for body in bodies if not _accepted(body)]
    letters = sqs.dead_letter_bodies()
    assert len(letters) == len(refused)
    assert all(letter["errorType"] == "InvalidSaleEvent" and letter["error"]["reason"] for letter in letters)
    hypothesis.event(f"{len(refused)} refused of {len(bodies)}")
    # AND what went to Firehose came from accepted messages only, and lands in the lake
    accepted_ids = {json.loads(body)["id"] for body in bodies if _accepted(body)}
    for record in firehose.delivered:
        assert read_record(record)["eventId"] in accepted_ids
        assert_lands_in_the_lake(record)
    # AND no sales item was written for a refused message
    from tests import support

    for item in _sales_items_written(dynamodb, support.SALES_TABLE):
        assert item["eventId"]["S"] in accepted_ids


def _sales_items_written(dynamodb: Recording, table: str) -> list[dict[str, Any]]:
    items = []
    for name, kwargs in dynamodb.calls:
        if name == "put_item" and kwargs["TableName"] == table:
            items.append(kwargs["Item"])
        elif name == "batch_write_item":
            items += [r["PutRequest"]["Item"] for r in kwargs["RequestItems"].get(table, []) if "PutRequest" in r]
    return items


_SALE_KEYS = [*DETAIL_FIELDS, "eventId", "eventTime", "saleId", "tenant_id", "sold_date", "event_id", "EventId"]


@st.composite
def compact_payloads(draw: st.DrawFn) -> bytes:
    """Compact records (the fan-out's wire form): a header with fields broken now and then, float32 embeddings of
    any finite value, and the bytes themselves cut, extended or overwritten now and then."""
    header: dict[str, Any] = {k: v for k, v in BASE_EVENT["detail"].items() if k != "embedding"}
    header.update(eventId=BASE_EVENT["id"], eventTime=BASE_EVENT["time"], saleId="0123456789abcdef0123")
    for _ in range(draw(st.integers(0, 2))):
        key = draw(st.sampled_from([k for k in _SALE_KEYS if k != "embedding"]))
        header[key] = draw(ARBITRARY_JSON | BOUNDARY_VALUES)
    value = draw(st.floats(width=32, allow_nan=False, allow_infinity=False))
    dimension = draw(st.sampled_from([pipeline_config.embedding_dimension()] * 4 + [0, 3]))
    try:
        data = sale_record.encode(header, [value] * dimension)
    except TypeError:  # a header orjson cannot write (an integer past 64 bits): the fan-out never sends one
        hypothesis.reject()
    damage = draw(st.sampled_from(["none", "none", "cut", "extend", "overwrite"]))
    if damage == "cut":
        return data[: draw(st.integers(0, len(data) - 1))]
    if damage == "extend":
        return data + draw(st.binary(min_size=1, max_size=7))
    if damage == "overwrite":
        at = draw(st.integers(1, 11))
        return data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at + 4 :]
    return data


@st.composite
def firehose_payloads(draw: st.DrawFn) -> bytes:
    """Bytes Firehose could hand the transform: a fan-out record with fields broken, JSON of another shape,
    or arbitrary bytes."""
    kind = draw(st.sampled_from(["record", "record", "compact", "json", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "compact":
        return draw(compact_payloads())
    if kind == "json":
        return json.dumps(draw(ARBITRARY_JSON), default=repr).encode()
    body: dict[str, Any] = dict(BASE_EVENT["detail"])
    body.update(eventId=BASE_EVENT["id"], eventTime=BASE_EVENT["time"], saleId="0123456789abcdef0123")
    for _ in range(draw(st.integers(1, 4))):
        key = draw(st.sampled_from(_SALE_KEYS))
        if draw(st.integers(0, 4)) == 0:
            body.pop(key, None)
        else:
            body[key] = draw(ARBITRARY_JSON | BOUNDARY_VALUES)
    text = json.dumps(body, allow_nan=True)
    if draw(st.integers(0, 9)) == 0:  # now and then two objects in one record, or a trailing blank
        text = draw(st.sampled_from([text + "\n" + text, text + "   ", text + text]))
    return text.encode()


@settings(
    max_examples=TRANSFORM_EXAMPLES,
    deadline=None,
    derandomize=DERANDOMIZE,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(payloads=st.lists(firehose_payloads(), min_size=1, max_size=4))
def test_transform_answers_every_record_and_every_ok_row_fits_the_glue_schema(payloads: list[bytes]) -> None:
    # GIVEN a Firehose batch of odd records
    event = firehose_event(payloads)

    # WHEN the transform handles it (it must not raise)
    out = transform(event, CONTEXT)["records"]

    # THEN one answer per record, in order; a failure carries the original data; every Ok row fits the table
    assert [r["recordId"] for r in out] == [r["recordId"] for r in event["records"]]
    for sent, answer in zip(event["records"], out, strict=True):
        assert answer["result"] in {"Ok", "ProcessingFailed"}
        hypothesis.event(answer["result"])
        if answer["result"] == "ProcessingFailed":
            assert answer["data"] == sent["data"]
            continue
        row = base64.b64decode(answer["data"])
        assert list(orjson.loads(row)) == DATA_COLUMNS
        keys = answer["metadata"]["partitionKeys"]
        assert set(keys) == {"tenant_id", "year", "month"}
        assert all(isinstance(v, str) and v and set(v) <= set(string.printable) for v in keys.values())
        converted = CONVERTER.convert([row])
        assert converted.failures == [], f"transform said Ok but Parquet refused: {converted.failures}"
        assert not any(isinstance(v, float) and not math.isfinite(v) for v in orjson.loads(row).values())


# -- mismatches this property found (reported to the lead; the fix belongs to the fan-out's validation) ----------

#: Events the fan-out accepts but the lake cannot hold: found by the property above with unbounded times and text.
#: Each is a strict xfail, so the day the fan-out rejects it (or the transform copes) the test says so.
#: Mismatches this property found between the fan-out's validation and the lake; each is now refused by the fan-out
#: (tests below), so none can pass upstream and fail downstream.
KNOWN_MISMATCHES = {
    # Converting to UTC leaves datetime's range: OverflowError in the transform -> ProcessingFailed (error prefix).
    "time-before-year-1-in-utc": ("time", "0001-01-01T00:00:00+01:00"),
    "time-after-year-9999-in-utc": ("time", "9999-12-31T23:59:59-01:00"),
    # A lone surrogate (JSON "\\ud800", which Lambda's json.loads accepts) passes validation, then orjson
    # refuses to encode the Firehose record (TypeError in SaleBatch._deliver): the invocation raises after the
    # claim and the DynamoDB item are written, and every retry does the same. Direct mode: the event ends in the
    # DLQ as a failed invocation, not as a rejection with its reason. Queue mode: the whole SQS batch raises, so
    # every message of the batch is redelivered until the receive limit moves all of them to the DLQ (see
    # test_one_unencodable_sale_fails_its_whole_sqs_batch).
    "lone-surrogate-in-a-string": ("detail.description", "caf\ud800"),
}


@pytest.mark.parametrize("case", sorted(KNOWN_MISMATCHES))
def test_a_known_mismatch_is_rejected_by_the_fanout_with_its_field(moto_clients: dict[str, Any], case: str) -> None:
    # GIVEN a sale with the one value the property found
    path, value = KNOWN_MISMATCHES[case]
    event = copy.deepcopy(BASE_EVENT)
    *parents, leaf = path.split(".")
    target = event
    for parent in parents:
        target = target[parent]
    target[leaf] = value
    _dynamodb, firehose, _sqs = _wire(moto_clients)

    # WHEN the fan-out handles it
    result = fanout.lambda_handler(event, CONTEXT)

    # THEN the fan-out refuses it, naming the field (before the fix it was accepted and failed downstream)
    assert result["outcome"] == "rejected", result
    assert result["reason"].startswith(f"{path}:"), result["reason"]
    assert firehose.delivered == []


def test_one_unencodable_sale_fails_only_itself_in_an_sqs_batch(moto_clients: dict[str, Any]) -> None:
    # GIVEN a batch of a good sale and a sale whose description holds a lone surrogate
    from tests.support import sqs_event

    good, poisoned = copy.deepcopy(BASE_EVENT), copy.deepcopy(BASE_EVENT)
    good["detail"]["productId"] = "PROD-GOOD-1"
    poisoned["detail"].update(productId="PROD-POISON-1", description="caf\ud800")
    poisoned["id"] = "poisoned-event"
    _dynamodb, firehose, _sqs = _wire(moto_clients)

    # WHEN the fan-out handles the batch
    response = fanout.lambda_handler(sqs_event([("m-good", good), ("m-poison", poisoned)]), CONTEXT)

    # THEN the good sale is processed and at most the poisoned message comes again (before the fan-out refused
    # lone surrogates, the handler raised, the event source mapping redelivered both, and after max_receive_count
    # both sat in the DLQ)
    assert {f["itemIdentifier"] for f in response["batchItemFailures"]} <= {"m-poison"}
    assert [read_record(r)["productId"] for r in firehose.delivered] == ["PROD-GOOD-1"]


def test_a_record_that_cannot_be_encoded_fails_only_its_own_sale(
    moto_clients: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a batch where building one sale's Firehose record raises (an encoding problem validation did not
    # foresee: simulated by making the record builder refuse that sale)
    from fanout_lambda import batch as batch_module
    from tests.support import sqs_event

    real = batch_module.firehose_record

    def refuse_one(sale: Any) -> bytes:
        if sale.product_id == "PROD-POISON-2":
            raise TypeError("str is not valid UTF-8: surrogates not allowed")
        return real(sale)

    monkeypatch.setattr(batch_module, "firehose_record", refuse_one)
    good, poisoned = copy.deepcopy(BASE_EVENT), copy.deepcopy(BASE_EVENT)
    good["detail"]["productId"] = "PROD-GOOD-2"
    poisoned["detail"]["productId"] = "PROD-POISON-2"
    poisoned["id"] = "poisoned-event-2"
    _dynamodb, firehose, _sqs = _wire(moto_clients)

    # WHEN the fan-out handles the batch
    response = fanout.lambda_handler(sqs_event([("m-good", good), ("m-poison", poisoned)]), CONTEXT)

    # THEN only the sale whose record could not be built comes again; its neighbour is delivered
    assert response["batchItemFailures"] == [{"itemIdentifier": "m-poison"}]
    assert [read_record(r)["productId"] for r in firehose.delivered] == ["PROD-GOOD-2"]
