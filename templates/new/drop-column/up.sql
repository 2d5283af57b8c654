-- Deploy code that no longer reads or writes {{ table }}.{{ column }} first.
-- keel backs the column's data up before it is dropped.
ALTER TABLE {{ table | ident }} DROP COLUMN {{ column | ident }};
