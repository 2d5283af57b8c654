-- Recreates the column; keel restores its data from the backup afterwards.
ALTER TABLE {{ table | ident }} ADD COLUMN {{ column | ident }} {{ type }};
