"""The sales item's embedding encodings: each round-trips within its stated bound, and any item decodes."""

from __future__ import annotations

import base64
import math
import struct
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer
from hypothesis import given, settings
from hypothesis import strategies as st

import pipeline_config
from local_pipeline.generator import BurstSpec, generate
from pipeline_config import embedding_codec
from pipeline_config.embedding_codec import ENCODINGS, cosine_bound, decode, encode

FLOAT32_MAX = pipeline_config.EMBEDDING_VALUE_LIMIT
FLOAT16_MIN = embedding_codec.FLOAT16_MIN_NORMAL
DIMENSION = 1024


def _cosine(a: list[float], b: list[float]) -> float:
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b)))


def _float32(values: list[float]) -> list[float]:
    return list(struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values)))


def _generated_embeddings(count: int = 200) -> list[list[float]]:
    events = generate(BurstSpec(events=count, retry_share=0, republish_share=0, invalid_share=0, unmatched_share=0))
    return [generated.event["detail"]["embedding"] for generated in events]


def test_pipeline_json_lists_exactly_the_encodings_the_codec_implements() -> None:
    assert pipeline_config.dynamodb_embedding_encodings() == ENCODINGS
    assert pipeline_config.dynamodb_embedding_encoding() in ENCODINGS


def test_gsi2_projection_carries_everything_decoding_needs() -> None:
    projected = set(pipeline_config.gsi2_projected_attributes())
    assert {embedding_codec.EMBEDDING, embedding_codec.ENCODING, embedding_codec.SCALE} <= projected


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_generator_embeddings_round_trip_within_the_issue_bounds(encoding: str) -> None:
    # GIVEN the embeddings the local runtime sends (uniform in [-1, 1], six decimals)
    required = {"float32": 1 - 1e-12, "float16": 0.999, "int8": 0.99}[encoding]
    worst = 1.0
    for values in _generated_embeddings():
        decoded = decode(encode(values, encoding))
        # THEN float32 is the lake's value exactly, the others within the issue's cosine bounds
        if encoding == "float32":
            assert decoded == _float32(values)
        worst = min(worst, _cosine(values, decoded))
    assert worst >= required
    assert worst >= cosine_bound(encoding, DIMENSION) - 1e-12


def test_stated_cosine_bounds_at_1024_dimensions() -> None:
    assert cosine_bound("float32", DIMENSION) == 1.0
    assert cosine_bound("float16", DIMENSION) == pytest.approx(0.99988, abs=1e-5)
    assert cosine_bound("int8", DIMENSION) == pytest.approx(0.99203, abs=1e-5)


#: Any finite float32, from subnormals to the largest, in both signs.
_values = st.floats(min_value=-FLOAT32_MAX, max_value=FLOAT32_MAX, allow_nan=False, width=32)
_vectors = st.lists(_values, min_size=1, max_size=64)


@settings(max_examples=300, deadline=None)
@given(_vectors, st.sampled_from(ENCODINGS))
def test_any_finite_float32_vector_round_trips_within_its_bound(values: list[float], encoding: str) -> None:
    attributes = encode(values, encoding)
    decoded = decode(attributes)

    assert len(decoded) == len(values)
    assert all(math.isfinite(y) for y in decoded)  # never infinity, whatever the magnitude
    largest = max(map(abs, values))
    written = attributes[embedding_codec.ENCODING]["S"]
    if written == "float32":
        assert decoded == values  # float32 inputs are exact (also float16's fallbacks)
    elif written == "float16":
        assert largest == 0 or FLOAT16_MIN <= largest <= 65504.0
        assert all(abs(y - x) <= 2**-11 * largest for x, y in zip(values, decoded, strict=True))
    else:
        assert all(abs(y - x) <= largest / 254 * (1 + 1e-9) for x, y in zip(values, decoded, strict=True))
    if largest:
        # the stated cosine bound holds for the vector's own dimension (scaled to dodge overflow in the products)
        scaled = [x / largest for x in values], [y / largest for y in decoded]
        assert _cosine(*scaled) >= cosine_bound(written, len(values)) - 1e-12
    else:
        assert decoded == [0.0] * len(values)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_all_zero_vector_decodes_to_zeros(encoding: str) -> None:
    attributes = encode([0.0] * 8, encoding)
    assert decode(attributes) == [0.0] * 8
    assert attributes[embedding_codec.ENCODING]["S"] == encoding


@pytest.mark.parametrize(
    "values",
    [
        [70000.0, 1.0],  # beyond float16's 65,504: would be infinity
        [FLOAT32_MAX, -FLOAT32_MAX],
        [1e-6, -3e-7],  # below float16's smallest normal: every value would lose its precision
    ],
)
def test_float16_falls_back_to_float32_for_what_it_cannot_hold(values: list[float]) -> None:
    attributes = encode(values, "float16")
    assert attributes[embedding_codec.ENCODING] == {"S": "float32"}
    assert decode(attributes) == _float32(values)


def test_float16_keeps_its_largest_finite_value() -> None:
    attributes = encode([65504.0, -65504.0, 0.5], "float16")
    assert attributes[embedding_codec.ENCODING] == {"S": "float16"}
    assert decode(attributes) == [65504.0, -65504.0, 0.5]


def test_int8_stores_one_byte_a_value_and_its_scale() -> None:
    attributes = encode([1.27, -0.635, 0.0], "int8")
    assert attributes[embedding_codec.EMBEDDING]["B"] == bytes([127, 256 - 64, 0])  # -63.5 rounds to even: -64
    assert float(attributes[embedding_codec.SCALE]["N"]) == pytest.approx(0.01)


@pytest.mark.parametrize("bad", [[math.nan, 0.0], [math.inf], [1e39]])
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_values_the_lake_cannot_hold_are_refused(bad: list[float], encoding: str) -> None:
    with pytest.raises(ValueError, match=r"finite|float32"):
        encode(bad, encoding)


def test_unknown_encoding_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown embedding encoding 'bfloat16'"):
        encode([1.0], "bfloat16")


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_decode_reads_the_client_the_resource_and_the_cli_forms(encoding: str) -> None:
    values = [0.25, -0.5, 0.125, 1.0]
    client_form: dict[str, Any] = {"PK": {"S": "TENANT#t#PRODUCT#p"}, **encode(values, encoding)}
    # boto3.resource("dynamodb") hands out Binary, str and Decimal
    resource_form = {name: TypeDeserializer().deserialize(value) for name, value in client_form.items()}
    assert isinstance(resource_form["embedding"], Binary)
    if encoding == "int8":
        assert isinstance(resource_form["embeddingScale"], Decimal)
    # the AWS CLI prints B as base64 text
    cli_form = dict(client_form, embedding={"B": base64.b64encode(client_form["embedding"]["B"]).decode()})

    assert decode(client_form) == decode(resource_form) == decode(cli_form)
    assert decode(client_form) == pytest.approx(values, abs=1 / 254)


def test_item_without_an_encoding_attribute_is_float32() -> None:
    # items written before the attribute existed
    blob = struct.pack("<3f", 0.1, 0.2, 0.3)
    assert decode({"embedding": {"B": blob}}) == _float32([0.1, 0.2, 0.3])


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"PK": {"S": "x"}}, "no 'embedding'"),
        ({"embedding": {"B": b"\x00" * 3}}, "4-byte"),
        ({"embedding": {"B": b"\x00" * 3}, "embeddingEncoding": {"S": "float16"}}, "2-byte"),
        ({"embedding": {"B": b"\x00"}, "embeddingEncoding": {"S": "int8"}}, "embeddingScale"),
        ({"embedding": {"B": b"\x00"}, "embeddingEncoding": {"S": "int4"}}, "unknown embedding encoding"),
        ({"embedding": {"S": "x"}}, "expected a B attribute"),
    ],
)
def test_undecodable_items_say_why(item: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode(item)
