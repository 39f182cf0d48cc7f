-- Reverses V3.
DROP TABLE workflow_transitions;
DROP TABLE workflow_steps;
DROP TRIGGER workflows_set_updated_at ON workflows;
DROP TABLE workflows;
