-- Reverses V2.
DROP TABLE client_hierarchy;
