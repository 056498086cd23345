-- get_or_create on a hit: the library's SELECT, LIMIT 2 written in the text.
\set i random(0, 9999)
SELECT "users"."id", "users"."email", "users"."name", "users"."karma" FROM "users" WHERE "email" = 'user' || :i || '@example.com' LIMIT 2;
