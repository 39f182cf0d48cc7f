-- auth: the accounts people sign in with. Profile data (names, locale) lives
-- in the user service; auth keeps only what a login decision needs.

-- One trigger function keeps updated_at honest for every table that has one,
-- so application code cannot forget to bump it.
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
	NEW.updated_at := now();
	RETURN NEW;
END;
$$;

CREATE TABLE users (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	email text NOT NULL CHECK (position('@' IN email) > 1 AND length(email) <= 320),
	-- NULL for accounts that only ever sign in through an OAuth provider
	password_hash text CHECK (password_hash IS NULL OR password_hash LIKE '$argon2id$%'),
	status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'locked', 'disabled')),
	failed_login_count integer NOT NULL DEFAULT 0 CHECK (failed_login_count >= 0),
	email_verified_at timestamptz,
	last_login_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);

-- Addresses are compared case-insensitively: Alice@x.io and alice@x.io are one account.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

CREATE TRIGGER users_set_updated_at BEFORE UPDATE ON users
	FOR EACH ROW EXECUTE FUNCTION set_updated_at();
