-- Who works on a task. Assignments are ended, not deleted, so "who had it
-- last week" stays answerable.
CREATE TABLE task_assignments (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	task_id uuid NOT NULL REFERENCES task_instances (id) ON DELETE CASCADE,
	-- a profile in the user service
	assignee_id uuid NOT NULL,
	role text NOT NULL DEFAULT 'owner' CHECK (role IN ('owner', 'reviewer', 'watcher')),
	assigned_by uuid,
	assigned_at timestamptz NOT NULL DEFAULT now(),
	unassigned_at timestamptz,
	CHECK (unassigned_at IS NULL OR unassigned_at >= assigned_at)
);

-- One current owner per task, so "who owns it" has one answer. Built with
-- the table, while it is still empty, hence not concurrently.
CREATE UNIQUE INDEX task_assignments_one_owner_key ON task_assignments (task_id)
	WHERE role = 'owner' AND unassigned_at IS NULL;
