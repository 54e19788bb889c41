"""DynamoDB's write limits as AWS documents them: what moto does not enforce and the local run does.

Each number cites the page of the Amazon DynamoDB Developer Guide (or API Reference) it comes from; the unit
tests pin them (tests/unit/local_pipeline/dynamodb/test_capacity.py). The simulator declares them itself:
it never imports a limit from the code it tests.
"""

from __future__ import annotations

__all__ = [
    "INITIAL_PREVIOUS_PEAK_WRITE_UNITS",
    "NEW_TABLE_WRITE_UNITS",
    "PARTITION_KEY_WRITE_UNITS_PER_SECOND",
    "PEAK_SCALING_SECONDS",
    "TABLE_WRITE_QUOTA_UNITS",
    "WRITE_UNIT_BYTES",
]

#: "One write request unit represents one write for an item up to 1 KB in size"; larger items take one unit per
#: started KB ("DynamoDB read and write operations", read-write-operations.html; "Item sizes and formats",
#: CapacityUnitCalculations.html).
WRITE_UNIT_BYTES = 1024

#: "Initial throughput for on-demand capacity mode": a newly created on-demand table has a previous peak of
#: 2,000 write request units, and "you can drive up to double the previous peak immediately, which enables newly
#: created on-demand tables to serve up to 4,000 write request units" ("DynamoDB on-demand capacity mode",
#: on-demand-capacity-mode.html, "Initial throughput and scaling properties"; the same 4,000 writes/s is a new
#: table's warm throughput in "Understanding DynamoDB warm throughput", warm-throughput.html). Each global
#: secondary index has its own ("Each GSI has its own" warm throughput, same page).
INITIAL_PREVIOUS_PEAK_WRITE_UNITS = 2_000
NEW_TABLE_WRITE_UNITS = 2 * INITIAL_PREVIOUS_PEAK_WRITE_UNITS

#: "On-demand capacity mode instantly accommodates up to double the previous peak traffic on a table ...
#: throttling can occur if you exceed double your previous peak within 30 minutes" (on-demand-capacity-mode.html;
#: "Pre-warming a table for on-demand capacity mode", pre-warming-on-demand-capacity-mode.html). The simulator
#: reads it conservatively: a peak becomes the "previous peak" 30 minutes after it was reached.
PEAK_SCALING_SECONDS = 30 * 60

#: "Each partition ... can support a maximum of 3,000 read units per second and 1,000 write units per second"
#: and one partition-key value cannot be spread over more than one partition's worth ("Best practices for
#: designing and using partition keys effectively", bp-partition-key-design.html; "Key range throughput exceeded
#: (hot partitions)", throttling-key-range-limit-exceeded-mitigation.html). Tables and GSIs alike.
PARTITION_KEY_WRITE_UNITS_PER_SECOND = 1_000

#: The default per-table throughput quota of on-demand tables: 40,000 write request units per second, per table
#: and per GSI, raisable on request ("Service, account, and table quotas in Amazon DynamoDB", ServiceQuotas.html,
#: "Throughput default quotas"). Past it a write is throttled with an ``AccountLimitExceeded`` reason.
TABLE_WRITE_QUOTA_UNITS = 40_000
