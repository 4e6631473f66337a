-- name: aging_by_customer
SELECT sum(not_due), sum(days_1_30), sum(days_31_60), sum(days_61_90), sum(over_90), sum(total), sum(overdue), max(oldest_days_past_due), count(region), count(customer_type) FROM credit.aging_by_customer;
-- name: handwritten_by_customer
SELECT sum(not_due), sum(days_1_30), sum(days_31_60), sum(days_61_90), sum(over_90), sum(total), sum(overdue), max(oldest), count(region), count(customer_type) FROM (SELECT a.customer, a.region, a.customer_type, coalesce(sum(CASE WHEN current_date - i.due_date <= 0 THEN i.open_amount END), 0) AS not_due, coalesce(sum(CASE WHEN current_date - i.due_date BETWEEN 1 AND 30 THEN i.open_amount END), 0) AS days_1_30, coalesce(sum(CASE WHEN current_date - i.due_date BETWEEN 31 AND 60 THEN i.open_amount END), 0) AS days_31_60, coalesce(sum(CASE WHEN current_date - i.due_date BETWEEN 61 AND 90 THEN i.open_amount END), 0) AS days_61_90, coalesce(sum(CASE WHEN current_date - i.due_date > 90 THEN i.open_amount END), 0) AS over_90, coalesce(sum(i.open_amount), 0) AS total, coalesce(sum(CASE WHEN current_date - i.due_date > 0 THEN i.open_amount END), 0) AS overdue, max(CASE WHEN current_date - i.due_date > 0 THEN current_date - i.due_date END) AS oldest FROM credit.account a LEFT JOIN credit.invoice i ON i.customer = a.customer AND i.open_amount > 0 GROUP BY a.customer) s;
-- name: aging_today
SELECT count(*), sum(open_amount), sum(days), max(bucket) FROM credit.aging(current_date);
-- name: aging_30_days_ago
SELECT count(*), sum(open_amount), sum(days), max(bucket) FROM credit.aging(current_date - 30);
-- name: weighted_days_late
SELECT credit.weighted_days_late(days_late, amount) FROM public.experience;
-- name: sql_weighted_days_late
SELECT round(sum(days_late * amount) / sum(amount), 4) FROM public.experience;
