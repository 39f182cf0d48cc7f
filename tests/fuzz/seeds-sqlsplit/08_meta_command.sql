SELECT 1;
\i other.sql
