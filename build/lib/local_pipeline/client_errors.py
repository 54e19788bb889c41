"""The one builder of the ``botocore`` ``ClientError`` a simulated service (or an injected fault) raises.

botocore raises ``ClientError(error_response, operation_name)``; callers read ``response["Error"]["Code"]``
(and sometimes the HTTP status). Every simulated error is built here, so they all have the shape botocore
gives them.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

__all__ = ["client_error"]


def client_error(code: str, message: str, operation: str, status: int | None = None, **details: str) -> ClientError:
    """The ``ClientError`` botocore raises for an error response ``code`` to ``operation``.

    ``status`` adds the response's ``ResponseMetadata.HTTPStatusCode``; ``details`` are further fields of the
    ``Error`` object (SQS's query protocol adds ``QueryErrorCode`` and ``Type``).
    """
    response: dict[str, Any] = {"Error": {"Code": code, "Message": message, **details}}
    if status is not None:
        response["ResponseMetadata"] = {"HTTPStatusCode": status}
    return ClientError(response, operation)
