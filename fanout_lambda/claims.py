"""Idempotency claims in bulk, in the table layout of Powertools' ``DynamoDBPersistenceLayer``.

Powertools' ``@idempotent_function`` costs two calls per sale (a conditional put, then an update or a delete).
A batch instead claims each sale with one conditional PutItem (``INPROGRESS``; a duplicate is known from the same
call through ``ReturnValuesOnConditionCheckFailure=ALL_OLD``), then writes every completion (``COMPLETED`` with the
stored response) and every release (the claim of a sale whose writes failed, deleted) with BatchWriteItem.

The record id, its attributes and the claim's condition are Powertools' own (the persistence layer hashes the key
and names the attributes; the condition is the one ``DynamoDBPersistenceLayer._put_record`` writes), so a sale
recorded by either trigger is recognised by the other: ``id`` = ``carousel.product.sold#md5(json [tenantId,
productId, soldDate])``, ``expiration`` (epoch s), ``in_progress_expiration`` (epoch ms), ``status``, ``data``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from aws_lambda_powertools.shared.json_encoder import Encoder
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import STATUS_CONSTANTS
from botocore.exceptions import ClientError

from .adapters import BatchWriter, Pending
from .flow_control import retry_throughput

#: Stable key prefix (not the function name): renaming or redeploying the function keeps the window.
KEY_PREFIX = "carousel.product.sold"
#: Duplicates are recognised for 24 hours.
IDEMPOTENCY_WINDOW_SECONDS = 24 * 60 * 60

INPROGRESS = STATUS_CONSTANTS["INPROGRESS"]
COMPLETED = STATUS_CONSTANTS["COMPLETED"]

ClaimStatus = Literal["claimed", "completed", "in_progress"]


def idempotency_config() -> IdempotencyConfig:
    """The configuration the sales' idempotency key is hashed with: the request's ``key`` field, 24 h."""
    return IdempotencyConfig(
        event_key_jmespath="key",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=IDEMPOTENCY_WINDOW_SECONDS,
    )


@dataclass(frozen=True)
class Claim:
    """The answer to one claim: ours now (``claimed``), already done (``completed``) or held elsewhere."""

    record_id: str
    status: ClaimStatus
    #: When our claim lapses (epoch ms) if this invocation dies; kept on the completed record as Powertools does.
    in_progress_expiration: int | None = None
    #: The stored response of a completed sale (``{"outcome", "eventId", "saleId"}``).
    response: dict[str, Any] | None = None


class IdempotencyRecords:
    """The idempotency table, driven in bulk. Hashing, attribute names and expiry come from Powertools."""

    def __init__(self, client: Any, table_name: str, writer: BatchWriter | None = None) -> None:
        self._client = client
        self.table_name = table_name
        self.layer = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=client)
        self.layer.configure(idempotency_config(), key_prefix=KEY_PREFIX)
        self.writer = writer or BatchWriter(client, table_name, (self.layer.key_attr,))

    def record_id(self, key: list[str]) -> str:
        """The record id of the sale keyed by ``key`` (what ``@idempotent_function`` computes for ``{"key": key}``)."""
        record_id = self.layer._get_hashed_idempotency_key({"key": key})
        if record_id is None:  # pragma: no cover - raise_on_no_idempotency_key raises first
            raise ValueError(f"no idempotency key in {key!r}")
        return record_id

    def claim(self, record_id: str, remaining_time_in_millis: int | None) -> Claim:
        """Claim the sale for this invocation with one conditional put; SDK errors other than the condition propagate.

        The put succeeds where Powertools' ``save_inprogress`` would: no record, an expired one, or an
        ``INPROGRESS`` one whose invocation's time is over.
        """
        layer = self.layer
        now = dt.datetime.now()
        item: dict[str, dict[str, str]] = {
            layer.key_attr: {"S": record_id},
            layer.expiry_attr: {"N": str(layer._get_expiry_timestamp())},
            layer.status_attr: {"S": INPROGRESS},
        }
        in_progress_expiration = None
        if remaining_time_in_millis is not None:
            in_progress_expiration = int((now + dt.timedelta(milliseconds=remaining_time_in_millis)).timestamp() * 1000)
            item[layer.in_progress_expiry_attr] = {"N": str(in_progress_expiration)}
        put = partial(
            self._client.put_item,
            TableName=self.table_name,
            Item=item,
            ConditionExpression=(
                "attribute_not_exists(#id) OR #expiry < :now OR "
                "(#status = :inprogress AND attribute_exists(#in_progress_expiry) AND "
                "#in_progress_expiry < :now_in_millis)"
            ),
            ExpressionAttributeNames={
                "#id": layer.key_attr,
                "#expiry": layer.expiry_attr,
                "#in_progress_expiry": layer.in_progress_expiry_attr,
                "#status": layer.status_attr,
            },
            ExpressionAttributeValues={
                ":now": {"N": str(int(now.timestamp()))},
                ":now_in_millis": {"N": str(int(now.timestamp() * 1000))},
                ":inprogress": {"S": INPROGRESS},
            },
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        try:
            # A throttled claim is resent in place while the invocation has time (flow_control).
            retry_throughput(put, self.writer.backoff)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return self._held(record_id, exc.response.get("Item"))
        return Claim(record_id, "claimed", in_progress_expiration)

    def _held(self, record_id: str, item: dict[str, Any] | None) -> Claim:
        if item is None:  # no old image: cannot tell; a later retry settles it
            return Claim(record_id, "in_progress")
        record = self.layer._item_to_data_record(item)
        # A record that expired between DynamoDB's check and this read is Powertools' "inconsistent state":
        # it is retried, as an in-progress one is.
        if record.status == COMPLETED:
            return Claim(record_id, "completed", response=record.response_json_as_dict())
        return Claim(record_id, "in_progress")

    def completion(self, claim: Claim, response: dict[str, Any]) -> dict[str, Any]:
        """The write that marks ``claim``'s sale done: the record Powertools' ``save_success`` leaves."""
        layer = self.layer
        item: dict[str, dict[str, str]] = {
            layer.key_attr: {"S": claim.record_id},
            layer.expiry_attr: {"N": str(layer._get_expiry_timestamp())},
            layer.status_attr: {"S": COMPLETED},
            layer.data_attr: {"S": json.dumps(response, cls=Encoder, sort_keys=True)},
        }
        if claim.in_progress_expiration is not None:
            item[layer.in_progress_expiry_attr] = {"N": str(claim.in_progress_expiration)}
        return {"PutRequest": {"Item": item}}

    def release(self, claim: Claim) -> dict[str, Any]:
        """The write that gives ``claim`` up (Powertools' ``delete_record``), so a retry processes the sale."""
        return {"DeleteRequest": {"Key": {self.layer.key_attr: {"S": claim.record_id}}}}

    def submit(self, requests: Sequence[dict[str, Any]], executor: Executor) -> Pending:
        """Start writing completions and releases (distinct records) with BatchWriteItem."""
        return self.writer.submit(requests, executor)
