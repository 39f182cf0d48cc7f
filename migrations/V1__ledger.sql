-- flotilla's own ledger, kept beside Flyway's history table in schema "flotilla"
-- of each service database. The Flyway table stays exactly Flyway's; what
-- flotilla knows beyond it lives here.
CREATE TABLE flotilla.run (
    id          bigserial PRIMARY KEY,
    run_uuid    uuid NOT NULL,
    command     text NOT NULL,
    started     timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished    timestamptz,
    outcome     text,
    host        text,
    os_user     text,
    git_commit  text,
    git_dirty   boolean
);

CREATE TABLE flotilla.execution (
    id              bigserial PRIMARY KEY,
    run_id          bigint REFERENCES flotilla.run (id) ON DELETE CASCADE,
    script          text NOT NULL,
    version         text,
    content_sha256  text NOT NULL,
    started         timestamptz NOT NULL DEFAULT clock_timestamp(),
    duration_ms     integer,
    success         boolean,
    -- no-transaction files: statements done so far, so a rerun continues there
    statements_done integer NOT NULL DEFAULT 0,
    statements_total integer,
    error           text
);
CREATE INDEX execution_script_idx ON flotilla.execution (script);
