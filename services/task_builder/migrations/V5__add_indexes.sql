-- Definitions and workflows are edited by a handful of people; ordinary
-- index builds inside the migration's transaction are fine.

CREATE INDEX task_categories_parent_id_idx ON task_categories (parent_id);

CREATE INDEX task_definitions_category_id_idx ON task_definitions (category_id) WHERE status = 'active';

-- ON DELETE RESTRICT checks look definitions up from this side.
CREATE INDEX workflow_steps_task_definition_id_idx ON workflow_steps (task_definition_id);

CREATE INDEX workflow_transitions_to_step_id_idx ON workflow_transitions (to_step_id);

-- One policy per target and priority; COALESCE folds "every priority" (NULL) into a key.
CREATE UNIQUE INDEX sla_policies_definition_key ON sla_policies (task_definition_id, COALESCE(priority, 0))
	WHERE task_definition_id IS NOT NULL;

CREATE UNIQUE INDEX sla_policies_category_key ON sla_policies (category_id, COALESCE(priority, 0))
	WHERE category_id IS NOT NULL;
