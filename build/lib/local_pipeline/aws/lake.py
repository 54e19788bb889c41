"""The lake bucket seen from this process: moto's in-process S3 backend, and the mirror to a local folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from local_pipeline.client_errors import client_error
from local_pipeline.context import ACCOUNT_ID

__all__ = ["MotoLakeWriter", "UnsafeKeyError", "moto_lake_objects", "safe_path"]


class UnsafeKeyError(ValueError):
    """An S3 key that would land outside the mirror folder (``..`` segments or an absolute path)."""


def safe_path(root: Path, key: str) -> Path:
    """``root / key``, refusing a key that would resolve outside ``root`` (S3 keys may hold ``..``)."""
    target = (root / key).resolve()
    if key.startswith("/") or not target.is_relative_to(root):
        raise UnsafeKeyError(f"S3 key {key!r} would be written outside {root}")
    return target


class MotoLakeWriter:
    """PutObject into moto's in-process S3 backend (see :meth:`~local_pipeline.aws.EmbeddedAws.lake_writer`)."""

    def __init__(self, region: str) -> None:
        self._backend = moto_s3_backend(region)

    def put_object(self, *, Bucket: str, Key: str, Body: bytes) -> dict[str, Any]:  # noqa: N803 - S3's names
        """Store ``Body`` under ``Key``, as PutObject does; the answer carries the object's ETag.

        moto's errors (a missing bucket) come back as the ``ClientError`` PutObject raises, with S3's code,
        so the local Firehose retries and discards as it would after a failed PutObject. Unlike PutObject
        through botocore, no CRC32 checksum is stored with the object (nothing in a run reads one).
        """
        from moto.core.exceptions import ServiceException  # noqa: PLC0415 - moto's in-process backend

        try:
            stored = self._backend.put_object(Bucket, Key, Body)
        except ServiceException as exc:
            raise client_error(exc.code, exc.message, "PutObject") from exc
        return {"ETag": stored.etag}


def moto_lake_objects(region: str, bucket: str) -> Iterator[tuple[str, bytes]]:
    """Every object of ``bucket`` in moto's in-process backend with its body, in key order."""
    backend = moto_s3_backend(region)
    for key in sorted(backend.get_bucket(bucket).keys.keys()):
        stored = backend.get_object(bucket, key)
        if stored is not None:  # a key deleted since it was listed: nothing to copy
            yield key, stored.value


def moto_s3_backend(region: str) -> Any:
    """moto's in-process S3 backend that holds this run's buckets (S3's backends are per partition)."""
    from moto.s3.models import s3_backends  # noqa: PLC0415 - moto's in-process backend
    from moto.utilities.utils import get_partition  # noqa: PLC0415

    return s3_backends[ACCOUNT_ID][get_partition(region)]
