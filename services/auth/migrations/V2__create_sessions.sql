-- A session is one signed-in device; deleting a user signs it out everywhere.
CREATE TABLE sessions (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz NOT NULL,
	-- kept after sign-out (not deleted) so security reviews can see it
	revoked_at timestamptz,
	revoked_reason text CHECK (revoked_reason IN ('logout', 'expired', 'password_change', 'admin')),
	ip_address inet,
	user_agent text CHECK (length(user_agent) <= 1024),
	CHECK (expires_at > created_at),
	CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
);
