-- The board's main query: unfinished tasks with their current owner and
-- whether they are overdue, so the API does not rebuild the join each time.
CREATE OR REPLACE VIEW open_tasks AS
SELECT t.id,
	t.client_id,
	t.task_definition_id,
	t.title,
	t.priority,
	t.status,
	t.due_at,
	a.assignee_id AS owner_id,
	(t.due_at IS NOT NULL AND t.due_at < now()) AS overdue,
	t.created_at
FROM task_instances t
LEFT JOIN task_assignments a
	ON a.task_id = t.id AND a.role = 'owner' AND a.unassigned_at IS NULL
WHERE t.completed_at IS NULL;
