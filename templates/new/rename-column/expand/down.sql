DROP TRIGGER {{ trigger | ident }} ON {{ table | ident }};
DROP FUNCTION {{ function | ident }}();
-- {{ column }} holds every value: the trigger kept it equal to {{ to }}.
ALTER TABLE {{ table | ident }} DROP COLUMN {{ to | ident }};
