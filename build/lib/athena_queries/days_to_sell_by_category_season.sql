-- How long items take to sell, per category and season (calendar quarter of the sale date).
SELECT
    category,
    season,
    count(*) AS sales,
    round(avg(days_to_sell), 1) AS avg_days_to_sell,
    approx_percentile(days_to_sell, 0.5) AS median_days_to_sell,
    max(days_to_sell) AS max_days_to_sell
FROM sales_history_dedup
GROUP BY category, season
ORDER BY category, season
