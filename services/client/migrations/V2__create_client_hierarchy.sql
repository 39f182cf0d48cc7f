-- Parent/child links between clients (a group and its subsidiaries, a
-- reseller and its customers). An edge table rather than a parent_id column
-- so the kind of relationship can be recorded.
CREATE TABLE client_hierarchy (
	parent_id uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	child_id uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	relationship text NOT NULL DEFAULT 'subsidiary' CHECK (relationship IN ('subsidiary', 'division', 'resold')),
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (parent_id, child_id),
	CHECK (parent_id <> child_id),
	-- a tree, not a graph: every client has at most one parent
	CONSTRAINT client_hierarchy_one_parent UNIQUE (child_id)
);
