-- Discussion on a task, and the files attached to it. Files themselves live
-- in object storage; the database keeps where and a digest to verify them.
CREATE TABLE task_comments (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	task_id uuid NOT NULL REFERENCES task_instances (id) ON DELETE CASCADE,
	author_id uuid NOT NULL,
	body text NOT NULL CHECK (length(body) BETWEEN 1 AND 20000),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	-- soft delete keeps thread replies readable ("comment removed")
	deleted_at timestamptz
);

CREATE TRIGGER task_comments_set_updated_at BEFORE UPDATE ON task_comments
	FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE task_attachments (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	task_id uuid NOT NULL REFERENCES task_instances (id) ON DELETE CASCADE,
	-- an attachment outlives the comment it was posted with
	comment_id bigint REFERENCES task_comments (id) ON DELETE SET NULL,
	file_name text NOT NULL CHECK (file_name !~ '[/\\]' AND length(file_name) BETWEEN 1 AND 255),
	content_type text NOT NULL DEFAULT 'application/octet-stream' CHECK (content_type ~ '^[a-z]+/[a-zA-Z0-9.+-]+$'),
	-- 100 MiB, the upload limit of the API
	size_bytes bigint NOT NULL CHECK (size_bytes BETWEEN 0 AND 104857600),
	storage_uri text NOT NULL UNIQUE CHECK (storage_uri ~ '^gs://'),
	sha256 bytea NOT NULL CHECK (octet_length(sha256) = 32),
	uploaded_by uuid NOT NULL,
	uploaded_at timestamptz NOT NULL DEFAULT now()
);
