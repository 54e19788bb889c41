"""Which of a stack's delivery streams a record goes to: the fan-out's rule, for the commands that put records.

A stack deploys ``firehose_stream_count`` identical Direct PUT streams (output ``delivery_stream_names``) and the
fan-out spreads its records over them by sale id, so each stream's byte quota carries a share of a burst and a
sale always goes through the same stream. ``errors reprocess`` puts records back by the same rule.
"""

from __future__ import annotations

import hashlib

__all__ = ["stream_index"]


def stream_index(sale_id: str, count: int) -> int:
    """The index (``0 .. count-1``) of the stream a record of sale ``sale_id`` goes to, among ``count`` streams.

    A stable hash of the sale id (BLAKE2b, 8 bytes, big-endian) modulo ``count``: the same on every run, process
    and machine (unlike :func:`hash`). This MUST match fanout_lambda's rule, which spreads the records first:
    change both together, or reprocessed records go through another stream than the fan-out's.
    """
    if count < 1:
        raise ValueError(f"stream count must be at least 1, got {count}")
    return int.from_bytes(hashlib.blake2b(sale_id.encode(), digest_size=8).digest(), "big") % count
