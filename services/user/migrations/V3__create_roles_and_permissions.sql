-- Role-based access: permissions are fixed codes the services check, roles
-- bundle them, profiles hold roles (optionally until a date).
CREATE TABLE roles (
	id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name text NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9_]*$'),
	description text NOT NULL DEFAULT '',
	-- system roles are seeded here and may not be deleted from the console
	is_system boolean NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE permissions (
	id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	-- "<resource>:<action>", e.g. "metrics:read"
	code text NOT NULL UNIQUE CHECK (code ~ '^[a-z_]+:[a-z_]+$'),
	description text NOT NULL DEFAULT ''
);

CREATE TABLE role_permissions (
	role_id integer NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
	permission_id integer NOT NULL REFERENCES permissions (id) ON DELETE CASCADE,
	PRIMARY KEY (role_id, permission_id)
);

CREATE TABLE profile_roles (
	profile_id uuid NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
	-- a role still held by someone cannot vanish under them
	role_id integer NOT NULL REFERENCES roles (id) ON DELETE RESTRICT,
	granted_by uuid REFERENCES profiles (id) ON DELETE SET NULL,
	granted_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz,
	PRIMARY KEY (profile_id, role_id),
	CHECK (expires_at IS NULL OR expires_at > granted_at)
);

-- The seed every environment starts from; ids are identity values, so the
-- links are made by name.
INSERT INTO roles (name, description, is_system) VALUES
	('admin', 'Full access to the organisation', true),
	('member', 'Works with metrics and tasks', true),
	('viewer', 'Read-only access', true);

INSERT INTO permissions (code, description) VALUES
	('metrics:read', 'See metric definitions and values'),
	('metrics:write', 'Define metrics and record values'),
	('tasks:read', 'See tasks'),
	('tasks:write', 'Create, assign and complete tasks'),
	('users:admin', 'Manage profiles and role grants');

INSERT INTO role_permissions (role_id, permission_id)
SELECT r.id, p.id
FROM roles r
JOIN permissions p ON r.name = 'admin'
	OR (r.name = 'member' AND p.code <> 'users:admin')
	OR (r.name = 'viewer' AND p.code LIKE '%:read');
