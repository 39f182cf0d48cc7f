-- Roll-ups per period, recomputed by the aggregator so dashboards never scan
-- raw values.
CREATE TABLE metric_snapshots (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	metric_definition_id uuid NOT NULL,
	client_id uuid NOT NULL,
	period text NOT NULL CHECK (period IN ('hour', 'day', 'week', 'month')),
	period_start timestamptz NOT NULL,
	sample_count integer NOT NULL CHECK (sample_count >= 0),
	min_value numeric(20, 6),
	max_value numeric(20, 6),
	sum_value numeric(28, 6),
	avg_value numeric(20, 6),
	computed_at timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT metric_snapshots_period_key UNIQUE (metric_definition_id, client_id, period, period_start),
	CHECK (min_value <= max_value),
	-- an empty period has no statistics at all
	CHECK ((sample_count = 0) = (min_value IS NULL))
);
