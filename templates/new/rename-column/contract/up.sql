-- Contract: the old column goes.
-- Deploy before this migration: code that reads and writes only {{ to }};
-- nothing may touch {{ column }} any more. keel backs {{ column }} up first.
-- keel:allow drop-dependency reason="expand-contract: only the sync between {{ column }} and {{ to }} uses it"
DROP TRIGGER {{ trigger | ident }} ON {{ table | ident }};
-- keel:allow drop-dependency reason="expand-contract: only the sync trigger uses it"
DROP FUNCTION {{ function | ident }}();
-- keel:allow drop-column reason="expand-contract: the deployed code reads and writes {{ to }} only"
ALTER TABLE {{ table | ident }} DROP COLUMN {{ column | ident }};
