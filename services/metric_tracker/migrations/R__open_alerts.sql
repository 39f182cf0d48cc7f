-- What the on-call screen shows: unresolved alerts with their rule, worst first.
-- bigquery_sync reads this too, so its columns only ever grow.
CREATE OR REPLACE VIEW open_alerts AS
SELECT e.id,
	e.client_id,
	r.metric_definition_id,
	r.name AS rule_name,
	r.severity,
	e.state,
	e.observed_value,
	r.comparator,
	r.threshold,
	e.triggered_at,
	e.acknowledged_at
FROM alert_events e
JOIN alert_rules r ON r.id = e.rule_id
WHERE e.resolved_at IS NULL
ORDER BY CASE r.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, e.triggered_at;
