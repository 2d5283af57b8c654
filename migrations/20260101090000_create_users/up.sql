-- The sample application's users. Plain SQL that PostgreSQL and SQLite both
-- accept, so the demo runs on the embedded default; ids are given by the
-- application (and by `keel seed`).
CREATE TABLE users (
    id bigint PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name text,
    created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP
);
