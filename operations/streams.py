"""Which of a stack's delivery streams a record goes to: the fan-out's rule, for the commands that put records.

A stack deploys ``firehose_stream_count`` identical Direct PUT streams (output ``delivery_stream_names``) and the
fan-out spreads its records over them by sale id, so each stream's byte quota carries a share of a burst and a
redelivered sale starts on the same stream. ``errors reprocess`` puts records back by the same rule, which is
the fan-out's own (:func:`fanout_lambda.firehose_sender.stream_index`), imported, not restated.
"""

from __future__ import annotations

from fanout_lambda.firehose_sender import stream_index as _fanout_stream_index

__all__ = ["stream_index"]


def stream_index(sale_id: str, count: int) -> int:
    """The index (``0 .. count-1``) of the stream a record of sale ``sale_id`` goes to, among ``count`` streams."""
    if count < 1:
        raise ValueError(f"stream count must be at least 1, got {count}")
    return _fanout_stream_index(sale_id, count)
