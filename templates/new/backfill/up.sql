-- Schema change only; the data change runs afterwards in batches ([backfill]).
ALTER TABLE {{ table | ident }} ADD COLUMN {{ column | ident }} {{ type }};
