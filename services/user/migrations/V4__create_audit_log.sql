-- Append-only record of who changed what. Rows are never updated, hence no
-- updated_at; the actor survives as NULL when a profile is purged.
CREATE TABLE audit_log (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	occurred_at timestamptz NOT NULL DEFAULT now(),
	actor_profile_id uuid REFERENCES profiles (id) ON DELETE SET NULL,
	action text NOT NULL CHECK (action IN ('insert', 'update', 'delete', 'grant', 'revoke', 'login')),
	target_table text NOT NULL,
	target_id text,
	details jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object')
);

-- Role grants are the changes auditors ask about first, so they are logged
-- by the database itself rather than trusted to every caller.
CREATE FUNCTION audit_profile_roles() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		INSERT INTO audit_log (actor_profile_id, action, target_table, target_id, details)
		VALUES (NEW.granted_by, 'grant', TG_TABLE_NAME, NEW.profile_id::text,
			jsonb_build_object('role_id', NEW.role_id, 'expires_at', NEW.expires_at));
		RETURN NEW;
	END IF;
	INSERT INTO audit_log (actor_profile_id, action, target_table, target_id, details)
	VALUES (NULL, 'revoke', TG_TABLE_NAME, OLD.profile_id::text, jsonb_build_object('role_id', OLD.role_id));
	RETURN OLD;
END;
$$;

CREATE TRIGGER profile_roles_audit AFTER INSERT OR DELETE ON profile_roles
	FOR EACH ROW EXECUTE FUNCTION audit_profile_roles();
