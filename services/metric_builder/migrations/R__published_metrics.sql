-- The contract metric_tracker reads through its read-only grant: published
-- definitions with their category path and current formula, so the tracker
-- never depends on this service's table layout.
CREATE OR REPLACE VIEW published_metrics AS
SELECT d.id,
	d.key,
	d.name,
	d.unit,
	d.value_type,
	d.aggregation,
	d.direction,
	d.version,
	d.owner_client_id,
	c.slug AS category,
	f.expression AS formula
FROM metric_definitions d
LEFT JOIN metric_categories c ON c.id = d.category_id
LEFT JOIN metric_formulas f ON f.definition_id = d.id AND f.valid_to IS NULL
WHERE d.status = 'published';
