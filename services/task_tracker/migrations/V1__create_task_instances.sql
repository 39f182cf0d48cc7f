-- task_tracker: the work actually being done. Definitions and workflows are
-- task_builder's (another database), so their ids are plain uuids here.

-- Keeps updated_at current on every table that has one.
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
	NEW.updated_at := now();
	RETURN NEW;
END;
$$;

-- An enum, not text: the status drives the board's columns and every report,
-- and a typo must be impossible.
CREATE TYPE task_status AS ENUM ('open', 'in_progress', 'blocked', 'in_review', 'done', 'cancelled');

CREATE TABLE task_instances (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	task_definition_id uuid NOT NULL,
	-- the definition's version the task was created from; later edits do not change it
	definition_version integer NOT NULL CHECK (definition_version > 0),
	workflow_id uuid,
	client_id uuid NOT NULL,
	title text NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 200),
	priority smallint NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 5),
	status task_status NOT NULL DEFAULT 'open',
	-- answers to the definition's form
	form_data jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(form_data) = 'object'),
	due_at timestamptz,
	created_by uuid NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	completed_at timestamptz,
	-- finished tasks say when, unfinished ones do not
	CHECK ((status IN ('done', 'cancelled')) = (completed_at IS NOT NULL))
);

CREATE TRIGGER task_instances_set_updated_at BEFORE UPDATE ON task_instances
	FOR EACH ROW EXECUTE FUNCTION set_updated_at();
