-- Deduplicated view of the lake: one row per sale, and so at most one row per event_id.
-- Firehose delivers at least once, so the same record can land in two objects. And a sale re-published under a
-- new EventBridge id after a failed first attempt can land under both ids. sale_id (a hash of tenant, product
-- and sale date) is the sale's identity, the same key the fan-out's idempotency uses, so the view keeps the
-- earliest event of each sale. Every dashboard reads this view.
CREATE OR REPLACE VIEW sales_history_dedup AS
SELECT *
FROM (
    SELECT
        s.*,
        row_number() OVER (PARTITION BY s.sale_id ORDER BY s.event_time, s.event_id) AS delivery_rank
    FROM sales_history AS s
) AS ranked
WHERE ranked.delivery_rank = 1
