-- user: who a person is on the platform. Credentials stay in the auth
-- service; a profile points at its account by id only, since the two live in
-- different databases and cannot share a foreign key.

-- Keeps updated_at current on every table that has one.
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
	NEW.updated_at := now();
	RETURN NEW;
END;
$$;

CREATE TABLE profiles (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	auth_user_id uuid NOT NULL UNIQUE,
	-- the client (organisation) the person belongs to, also in another database
	client_id uuid,
	display_name text NOT NULL CHECK (length(btrim(display_name)) BETWEEN 1 AND 100),
	given_name text,
	family_name text,
	-- BCP 47 language tag, the subset the UI ships translations for
	locale text NOT NULL DEFAULT 'en' CHECK (locale ~ '^[a-z]{2}(-[A-Z]{2})?$'),
	time_zone text NOT NULL DEFAULT 'UTC',
	avatar_url text CHECK (avatar_url ~ '^https://'),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	-- soft delete: the audit log must keep resolving who did what
	deleted_at timestamptz
);

CREATE TRIGGER profiles_set_updated_at BEFORE UPDATE ON profiles
	FOR EACH ROW EXECUTE FUNCTION set_updated_at();
