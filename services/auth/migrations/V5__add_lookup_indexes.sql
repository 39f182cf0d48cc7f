-- Foreign keys are not indexed by PostgreSQL on their own; without these a
-- user deletion scans every session and token.
CREATE INDEX sessions_user_id_idx ON sessions (user_id);

-- The expiry sweeper only ever looks at sessions still live.
CREATE INDEX sessions_live_expires_at_idx ON sessions (expires_at) WHERE revoked_at IS NULL;

CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);

CREATE INDEX refresh_tokens_replaced_by_idx ON refresh_tokens (replaced_by) WHERE replaced_by IS NOT NULL;
