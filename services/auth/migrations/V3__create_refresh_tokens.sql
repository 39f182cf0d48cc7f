-- Refresh tokens rotate: each use issues a successor and records the chain,
-- so reuse of an already-rotated token (a stolen one) can revoke the session.
CREATE TABLE refresh_tokens (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	-- SHA-256 of the token: the token itself is never stored
	token_hash bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
	issued_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz NOT NULL,
	used_at timestamptz,
	replaced_by bigint REFERENCES refresh_tokens (id) ON DELETE SET NULL,
	CHECK (expires_at > issued_at),
	CHECK (replaced_by IS NULL OR used_at IS NOT NULL)
);
