-- Sales count and revenue per tenant, brand and category, by month of sale.
SELECT
    tenant_id,
    year,
    month,
    brand,
    category,
    count(*) AS sales,
    round(sum(sale_price), 2) AS revenue
FROM sales_history_dedup
GROUP BY tenant_id, year, month, brand, category
ORDER BY tenant_id, year, month, revenue DESC
