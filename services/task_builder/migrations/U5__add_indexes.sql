-- Reverses V5.
DROP INDEX sla_policies_category_key;
DROP INDEX sla_policies_definition_key;
DROP INDEX workflow_transitions_to_step_id_idx;
DROP INDEX workflow_steps_task_definition_id_idx;
DROP INDEX task_definitions_category_id_idx;
DROP INDEX task_categories_parent_id_idx;
