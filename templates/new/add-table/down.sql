DROP TABLE {{ table | ident }};
