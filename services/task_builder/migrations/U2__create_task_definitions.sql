-- Reverses V2.
DROP TRIGGER task_definitions_set_updated_at ON task_definitions;
DROP TABLE task_definitions;
