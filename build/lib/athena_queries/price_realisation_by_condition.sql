-- Price realisation: the share of the listed price a sale achieves, by item condition.
SELECT
    condition,
    count(*) AS sales,
    round(avg(sale_price / nullif(listed_price, 0)), 3) AS avg_realisation,
    round(sum(sale_price) / nullif(sum(listed_price), 0), 3) AS weighted_realisation
FROM sales_history_dedup
GROUP BY condition
ORDER BY avg_realisation DESC
