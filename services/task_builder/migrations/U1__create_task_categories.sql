-- Reverses V1 in the opposite order of creation.
DROP TRIGGER task_categories_set_updated_at ON task_categories;
DROP TABLE task_categories;
DROP FUNCTION set_updated_at();
