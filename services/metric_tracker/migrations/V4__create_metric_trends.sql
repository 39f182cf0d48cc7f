-- Fitted trends over a sliding window, one row per series and window end;
-- the alerting of "steadily worse" reads these rather than raw values.
CREATE TABLE metric_trends (
	metric_definition_id uuid NOT NULL,
	client_id uuid NOT NULL,
	period text NOT NULL CHECK (period IN ('day', 'week', 'month')),
	window_start timestamptz NOT NULL,
	window_end timestamptz NOT NULL,
	-- least-squares slope, in the metric's unit per period
	slope double precision NOT NULL,
	direction text NOT NULL CHECK (direction IN ('up', 'down', 'flat')),
	-- r squared of the fit
	confidence numeric(4, 3) NOT NULL CHECK (confidence BETWEEN 0 AND 1),
	computed_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (metric_definition_id, client_id, period, window_end),
	CHECK (window_end > window_start)
);
