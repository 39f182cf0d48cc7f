-- Service levels: how soon a task must be picked up and finished. A policy
-- applies to one definition or to a whole category, never both, so the
-- most specific policy is unambiguous.
CREATE TABLE sla_policies (
	id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name text NOT NULL UNIQUE,
	task_definition_id uuid REFERENCES task_definitions (id) ON DELETE CASCADE,
	category_id integer REFERENCES task_categories (id) ON DELETE CASCADE,
	-- NULL: every priority
	priority smallint CHECK (priority BETWEEN 1 AND 5),
	respond_within interval NOT NULL CHECK (respond_within > interval '0'),
	resolve_within interval NOT NULL,
	business_hours_only boolean NOT NULL DEFAULT true,
	created_at timestamptz NOT NULL DEFAULT now(),
	CHECK (num_nonnulls(task_definition_id, category_id) = 1),
	CHECK (resolve_within >= respond_within)
);
