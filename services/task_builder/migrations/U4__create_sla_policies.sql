-- Reverses V4.
DROP TABLE sla_policies;
