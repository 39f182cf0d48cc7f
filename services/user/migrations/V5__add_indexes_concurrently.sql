-- flotilla:no-transaction
-- profiles and audit_log are large and written all day in production: these
-- indexes are built without blocking writers, which PostgreSQL only allows
-- outside a transaction. IF NOT EXISTS lets a run that was interrupted halfway
-- be repeated (drop any index left INVALID before that).

CREATE INDEX CONCURRENTLY IF NOT EXISTS profiles_client_id_idx ON profiles (client_id) WHERE deleted_at IS NULL;

CREATE INDEX CONCURRENTLY IF NOT EXISTS profile_roles_role_id_idx ON profile_roles (role_id);

CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_log_actor_idx ON audit_log (actor_profile_id, occurred_at DESC);

-- BRIN: the log is appended in time order, so a tiny index serves range scans.
CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_log_occurred_at_brin ON audit_log USING brin (occurred_at);
