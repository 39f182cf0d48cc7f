-- Keeps updated_at current on alert rules, the one table here edited in place.
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
	NEW.updated_at := now();
	RETURN NEW;
END;
$$;

CREATE TABLE alert_rules (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	metric_definition_id uuid NOT NULL,
	-- NULL: the rule watches the metric for every client
	client_id uuid,
	name text NOT NULL CHECK (length(btrim(name)) > 0),
	comparator text NOT NULL CHECK (comparator IN ('>', '>=', '<', '<=', '=', '<>')),
	threshold numeric(20, 6) NOT NULL,
	-- how long the condition must hold before the alert fires (flapping guard)
	hold_for interval NOT NULL DEFAULT '5 minutes' CHECK (hold_for >= interval '0'),
	severity text NOT NULL DEFAULT 'warning' CHECK (severity IN ('info', 'warning', 'critical')),
	enabled boolean NOT NULL DEFAULT true,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER alert_rules_set_updated_at BEFORE UPDATE ON alert_rules
	FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE alert_events (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	rule_id uuid NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
	client_id uuid NOT NULL,
	state text NOT NULL DEFAULT 'firing' CHECK (state IN ('firing', 'acknowledged', 'resolved')),
	observed_value numeric(20, 6) NOT NULL,
	triggered_at timestamptz NOT NULL DEFAULT now(),
	acknowledged_at timestamptz,
	-- the user (user service) who acknowledged it
	acknowledged_by uuid,
	resolved_at timestamptz,
	CHECK ((state = 'resolved') = (resolved_at IS NOT NULL)),
	CHECK (resolved_at IS NULL OR resolved_at >= triggered_at),
	CHECK ((acknowledged_at IS NULL) = (acknowledged_by IS NULL))
);
