-- Links an account to identities at external providers. The provider's
-- subject is what stays stable; the e-mail there may change.
CREATE TABLE oauth_links (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	provider text NOT NULL CHECK (provider IN ('google', 'github', 'microsoft', 'apple')),
	provider_subject text NOT NULL CHECK (length(provider_subject) BETWEEN 1 AND 255),
	provider_email text,
	scopes text[] NOT NULL DEFAULT '{}',
	linked_at timestamptz NOT NULL DEFAULT now(),
	last_used_at timestamptz,
	-- one provider identity can sign in to one account only
	CONSTRAINT oauth_links_provider_subject_key UNIQUE (provider, provider_subject),
	-- and an account links each provider at most once
	CONSTRAINT oauth_links_user_provider_key UNIQUE (user_id, provider)
);
