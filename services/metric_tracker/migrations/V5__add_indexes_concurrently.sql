-- flotilla:no-transaction
-- metric_values takes writes every second; a plain CREATE INDEX would block
-- them for the whole build. CONCURRENTLY cannot run inside a transaction,
-- hence the directive; IF NOT EXISTS makes a re-run after an interruption safe.

-- Dashboards read one series newest first.
CREATE INDEX CONCURRENTLY IF NOT EXISTS metric_values_series_idx ON metric_values (metric_definition_id, client_id, recorded_at DESC);

-- Retention jobs delete by time; values arrive roughly in time order, which BRIN exploits.
CREATE INDEX CONCURRENTLY IF NOT EXISTS metric_values_recorded_at_brin ON metric_values USING brin (recorded_at);

CREATE INDEX CONCURRENTLY IF NOT EXISTS alert_rules_metric_idx ON alert_rules (metric_definition_id) WHERE enabled;

CREATE INDEX CONCURRENTLY IF NOT EXISTS alert_events_rule_id_idx ON alert_events (rule_id, triggered_at DESC);

-- The on-call view lists what is still open; resolved events are the vast majority.
CREATE INDEX CONCURRENTLY IF NOT EXISTS alert_events_open_idx ON alert_events (client_id, triggered_at) WHERE resolved_at IS NULL;
