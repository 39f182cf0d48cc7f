-- flotilla:no-transaction
-- The task tables are written by every team all day; these indexes are built
-- without locking out writers, which only works outside a transaction.
-- IF NOT EXISTS makes a re-run after an interrupted build safe.

-- The board: open work per client by status.
CREATE INDEX CONCURRENTLY IF NOT EXISTS task_instances_client_status_idx ON task_instances (client_id, status) WHERE completed_at IS NULL;

-- Overdue sweeps only care about unfinished tasks with a due date.
CREATE INDEX CONCURRENTLY IF NOT EXISTS task_instances_due_at_idx ON task_instances (due_at) WHERE completed_at IS NULL AND due_at IS NOT NULL;

-- "My tasks": current assignments of one person.
CREATE INDEX CONCURRENTLY IF NOT EXISTS task_assignments_assignee_idx ON task_assignments (assignee_id) WHERE unassigned_at IS NULL;

CREATE INDEX CONCURRENTLY IF NOT EXISTS task_assignments_task_id_idx ON task_assignments (task_id);

CREATE INDEX CONCURRENTLY IF NOT EXISTS task_status_history_task_id_idx ON task_status_history (task_id, changed_at);

CREATE INDEX CONCURRENTLY IF NOT EXISTS task_comments_task_id_idx ON task_comments (task_id, created_at);

CREATE INDEX CONCURRENTLY IF NOT EXISTS task_attachments_task_id_idx ON task_attachments (task_id);

CREATE INDEX CONCURRENTLY IF NOT EXISTS task_attachments_comment_id_idx ON task_attachments (comment_id) WHERE comment_id IS NOT NULL;
