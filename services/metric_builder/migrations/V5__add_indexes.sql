-- The catalogue is small and edited rarely, so plain (locking) index builds
-- inside the migration's transaction are fine here.

CREATE INDEX metric_categories_parent_id_idx ON metric_categories (parent_id);

CREATE INDEX metric_definitions_category_id_idx ON metric_definitions (category_id);

-- metric_tracker asks for the published definitions of a client all the time.
CREATE INDEX metric_definitions_owner_published_idx ON metric_definitions (owner_client_id, key)
	WHERE status = 'published';

CREATE INDEX metric_template_items_definition_id_idx ON metric_template_items (definition_id);

-- At most one formula in force per definition (the open-ended one).
CREATE UNIQUE INDEX metric_formulas_current_key ON metric_formulas (definition_id) WHERE valid_to IS NULL;

CREATE INDEX metric_formula_inputs_input_idx ON metric_formula_inputs (input_definition_id);
