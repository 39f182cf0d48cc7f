-- The newest value of every series, what most API calls want; the series
-- index makes DISTINCT ON cheap.
CREATE OR REPLACE VIEW latest_metric_values AS
SELECT DISTINCT ON (metric_definition_id, client_id)
	metric_definition_id,
	client_id,
	value,
	recorded_at,
	definition_version
FROM metric_values
ORDER BY metric_definition_id, client_id, recorded_at DESC, id DESC;
