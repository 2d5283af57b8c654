CREATE INDEX CONCURRENTLY IF NOT EXISTS {{ index | ident }} ON {{ table | ident }} ({{ column | ident }});
