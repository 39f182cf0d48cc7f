-- A workflow chains task definitions into steps with allowed transitions
-- (review may send work back to drafting), so it is a graph, not a list.
CREATE TABLE workflows (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	name text NOT NULL UNIQUE CHECK (length(btrim(name)) > 0),
	description text NOT NULL DEFAULT '',
	status text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'archived')),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER workflows_set_updated_at BEFORE UPDATE ON workflows
	FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE workflow_steps (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	workflow_id uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
	-- a definition in use by a workflow cannot be deleted from under it
	task_definition_id uuid NOT NULL REFERENCES task_definitions (id) ON DELETE RESTRICT,
	step_order smallint NOT NULL CHECK (step_order >= 1),
	name text NOT NULL,
	CONSTRAINT workflow_steps_order_key UNIQUE (workflow_id, step_order)
);

CREATE TABLE workflow_transitions (
	from_step_id bigint NOT NULL REFERENCES workflow_steps (id) ON DELETE CASCADE,
	to_step_id bigint NOT NULL REFERENCES workflow_steps (id) ON DELETE CASCADE,
	-- the outcome of the from-step that takes this edge ("approved", "rejected")
	outcome text NOT NULL DEFAULT 'done' CHECK (outcome ~ '^[a-z_]+$'),
	PRIMARY KEY (from_step_id, outcome),
	CHECK (from_step_id <> to_step_id)
);
