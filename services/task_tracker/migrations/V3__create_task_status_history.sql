-- Every status change, written by the database itself so no code path can
-- skip it; SLA reports compute response and resolution times from it.
CREATE TABLE task_status_history (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	task_id uuid NOT NULL REFERENCES task_instances (id) ON DELETE CASCADE,
	from_status task_status,
	to_status task_status NOT NULL,
	changed_at timestamptz NOT NULL DEFAULT now(),
	CHECK (from_status IS DISTINCT FROM to_status)
);

CREATE FUNCTION record_task_status() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		INSERT INTO task_status_history (task_id, from_status, to_status)
		VALUES (NEW.id, NULL, NEW.status);
	ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
		INSERT INTO task_status_history (task_id, from_status, to_status)
		VALUES (NEW.id, OLD.status, NEW.status);
	END IF;
	RETURN NULL;
END;
$$;

CREATE TRIGGER task_instances_record_status AFTER INSERT OR UPDATE OF status ON task_instances
	FOR EACH ROW EXECUTE FUNCTION record_task_status();
