-- flotilla's own ledger, kept beside Flyway's history table in schema "flotilla"
-- of each service database. The Flyway table stays exactly Flyway's; what
-- flotilla knows beyond it lives here. Applied by flotilla's own engine
-- (core/apply.c), recorded in "flotilla"."flyway_schema_history".

-- One row per command that changed something (migrate, undo, baseline, repair).
CREATE TABLE flotilla.run (
    id               bigserial PRIMARY KEY,
    run_uuid         uuid NOT NULL,         -- the same for every service of one invocation
    command          text NOT NULL,
    service          text,
    started          timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished         timestamptz,
    outcome          text CHECK (outcome IN ('success', 'failed', 'interrupted')),
    error            text,
    host             text,
    os_user          text,
    db_user          text NOT NULL DEFAULT session_user,
    git_commit       text,
    git_dirty        boolean,
    flotilla_version text
);
CREATE INDEX run_uuid_idx ON flotilla.run (run_uuid);

-- One row per migration run (also failed and partial ones). A transactional
-- migration's row commits with it (or is written after its rollback, with the
-- error); a no-transaction one gets its row first and statements_done after
-- each statement, so a later run continues where this one stopped.
CREATE TABLE flotilla.execution (
    id               bigserial PRIMARY KEY,
    run_id           bigint REFERENCES flotilla.run (id) ON DELETE CASCADE,
    history_table    text NOT NULL,         -- "public"."flyway_schema_history": which history it belongs to
    script           text NOT NULL,
    version          text,
    type             text NOT NULL,         -- as in the history table: SQL, UNDO_SQL
    checksum         integer,               -- as in the history table (Flyway's CRC-32)
    content_sha256   text NOT NULL,         -- of the file's bytes, before placeholders
    no_transaction   boolean NOT NULL DEFAULT false,
    started          timestamptz NOT NULL DEFAULT clock_timestamp(),
    duration_ms      integer,
    success          boolean,               -- NULL: running, or killed part way
    statements_done  integer NOT NULL DEFAULT 0,
    statements_total integer,
    resumed_from     integer,               -- 1-based statement this run started at, when it continued
    prefix_sha256    text,                  -- SHA-256 of the statements done (a resume checks them unchanged)
    error            text
);
CREATE INDEX execution_script_idx ON flotilla.execution (history_table, script, id);
