-- metric_tracker: the measured values. Definitions live in metric_builder
-- (another database), so definition and client ids are plain uuids here and
-- the tracker checks them against metric_builder's published_metrics view.
CREATE TABLE metric_values (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	metric_definition_id uuid NOT NULL,
	-- the definition's version the value was recorded under
	definition_version integer NOT NULL DEFAULT 1 CHECK (definition_version > 0),
	client_id uuid NOT NULL,
	recorded_at timestamptz NOT NULL,
	value numeric(20, 6) NOT NULL,
	source text NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'import', 'computed')),
	ingested_at timestamptz NOT NULL DEFAULT now(),
	-- re-sending a batch must not double-count: the sender's key makes it idempotent
	idempotency_key text,
	CONSTRAINT metric_values_idempotency_key UNIQUE (client_id, idempotency_key)
);
