-- Reads must go back to {{ column }} first: deploy code that reads {{ column }}.
COMMENT ON COLUMN {{ table | ident }}.{{ to | ident }} IS NULL;
