-- Nullable, or with a constant default: both are instant on PostgreSQL 11+.
ALTER TABLE {{ table | ident }} ADD COLUMN {{ column | ident }} {{ type }};
