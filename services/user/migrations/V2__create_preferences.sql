-- One row per setting rather than a jsonb column on profiles, so a single
-- preference can change without rewriting (and racing on) the others.
CREATE TABLE preferences (
	profile_id uuid NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
	name text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_.]*$'),
	value jsonb NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (profile_id, name)
);

CREATE TRIGGER preferences_set_updated_at BEFORE UPDATE ON preferences
	FOR EACH ROW EXECUTE FUNCTION set_updated_at();
