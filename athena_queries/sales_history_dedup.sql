-- Deduplicated view of the lake: one row per EventBridge event id.
-- Firehose delivers at least once, so the same record can land in two objects; every dashboard reads this view.
CREATE OR REPLACE VIEW sales_history_dedup AS
SELECT *
FROM (
    SELECT
        s.*,
        row_number() OVER (PARTITION BY s.event_id ORDER BY s.event_time, s.sale_id) AS delivery_rank
    FROM sales_history AS s
) AS ranked
WHERE ranked.delivery_rank = 1
