-- Derived metrics: a formula computes one definition from others
-- (conversion_rate = orders / visits). Formulas change over time and the old
-- ones stay, so historical values can be recomputed as they were.
CREATE TABLE metric_formulas (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	definition_id uuid NOT NULL REFERENCES metric_definitions (id) ON DELETE CASCADE,
	expression text NOT NULL CHECK (length(expression) BETWEEN 1 AND 4000),
	valid_from timestamptz NOT NULL DEFAULT now(),
	valid_to timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	CHECK (valid_to IS NULL OR valid_to > valid_from)
);

-- The names an expression uses, bound to the metrics they stand for.
CREATE TABLE metric_formula_inputs (
	formula_id bigint NOT NULL REFERENCES metric_formulas (id) ON DELETE CASCADE,
	alias text NOT NULL CHECK (alias ~ '^[a-z][a-z0-9_]*$'),
	input_definition_id uuid NOT NULL REFERENCES metric_definitions (id) ON DELETE RESTRICT,
	PRIMARY KEY (formula_id, alias)
);
