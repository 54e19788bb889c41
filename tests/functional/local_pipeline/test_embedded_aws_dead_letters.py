"""The local run's SendMessageBatch to the DLQ answers as moto's own does (it skips only moto's per-entry count
of the whole queue): same messages in the queue, same errors for the same bad requests."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_pipeline.aws import SQS_MESSAGE_MAX_BYTES as MAX_SQS_MESSAGE_BYTES
from local_pipeline.aws import EmbeddedAws


@pytest.fixture
def aws() -> Iterator[EmbeddedAws]:
    with EmbeddedAws() as embedded:
        embedded.create_resources()
        yield embedded


def entry(entry_id: str, body: str = "{}", error_type: str = "InvalidSaleEvent") -> dict[str, Any]:
    return {
        "Id": entry_id,
        "MessageBody": body,
        "MessageAttributes": {"errorType": {"DataType": "String", "StringValue": error_type}},
    }


def test_dead_letters_land_in_the_queue_with_their_attributes(aws: EmbeddedAws) -> None:
    response = aws.send_dead_letters([entry("0", '{"a":1}'), entry("1", '{"b":2}', "DeadLetterTooLarge")])
    assert [sent["Id"] for sent in response["Successful"]] == ["0", "1"]
    assert response["Failed"] == []
    received = aws.client("sqs").receive_message(
        QueueUrl=aws.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )["Messages"]
    by_body = {m["Body"]: m for m in received}
    assert set(by_body) == {'{"a":1}', '{"b":2}'}
    assert by_body['{"b":2}']["MessageAttributes"]["errorType"]["StringValue"] == "DeadLetterTooLarge"
    assert {m["MessageId"] for m in received} == {sent["MessageId"] for sent in response["Successful"]}
    assert {m["MD5OfBody"] for m in received} == {sent["MD5OfMessageBody"] for sent in response["Successful"]}


BAD_REQUESTS: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "eleven entries": lambda: [entry(str(i)) for i in range(11)],
    "ids not distinct": lambda: [entry("a"), entry("a")],
    "id with a dot": lambda: [entry("a.b")],
    "batch too long": lambda: [entry(str(i), "x" * MAX_SQS_MESSAGE_BYTES) for i in range(5)],
    "body too long": lambda: [entry("0", "x" * (MAX_SQS_MESSAGE_BYTES + 1))],
}


@pytest.mark.parametrize("make", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_a_bad_batch_is_refused_with_the_error_moto_gives(
    aws: EmbeddedAws, make: Callable[[], list[dict[str, Any]]]
) -> None:
    with pytest.raises(ClientError) as moto_said:
        aws.client("sqs").send_message_batch(QueueUrl=aws.queue_url, Entries=make())
    with pytest.raises(ClientError) as we_say:
        aws.send_dead_letters(make())
    assert we_say.value.response["Error"] == moto_said.value.response["Error"]
    assert (
        aws.client("sqs").get_queue_attributes(QueueUrl=aws.queue_url, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"
        ]["ApproximateNumberOfMessages"]
        == "0"
    )


def test_dead_letter_bodies_come_back_exactly_but_are_not_held_in_memory(aws: EmbeddedAws) -> None:
    bodies = ['{"reason":"prix négatif ✓"}', '{"n":' + "1" * 5000 + "}", ""]
    aws.put_dead_letter(bodies[0])
    response = aws.send_dead_letters([entry("1", bodies[1]), entry("2", bodies[2])])
    received = aws.client("sqs").receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in received) == sorted(bodies)
    md5 = {m["Body"]: m["MD5OfBody"] for m in received}
    assert [md5[body] for body in bodies[1:]] == [sent["MD5OfMessageBody"] for sent in response["Successful"]]
    # moto's queue holds each message without its body: that is in the run's temporary file
    held = [vars(message) for message in aws._moto_dead_letter_queue()._messages]
    assert len(held) == 3
    strings = [value for fields in held for value in fields.values() if isinstance(value, str)]
    assert not set(strings) & set(bodies[:2])
    assert max(map(len, strings)) < 1000  # ids and receipt handles, not the 5,006-character body


def test_dead_letters_sent_from_many_threads_at_once_keep_their_own_bodies(aws: EmbeddedAws) -> None:
    # the fan-out's pool sends a batch's dead-letter chunks from several threads at the same time
    sent: dict[str, str] = {}
    lock = threading.Lock()

    def send(thread: int) -> None:
        for chunk in range(20):
            entries = [
                entry(str(i), f'{{"t":{thread},"c":{chunk},"i":{i},"pad":"{"x" * (11_000 + i)}"}}') for i in range(10)
            ]
            response = aws.send_dead_letters(entries)
            with lock:
                sent.update(
                    {s["MessageId"]: e["MessageBody"] for e, s in zip(entries, response["Successful"], strict=True)}
                )

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    held = aws._moto_dead_letter_queue()._messages
    assert len(held) == len(sent) == 1_600
    assert [message.id for message in held if message.body != sent[message.id]] == []
