-- Diesel's users.filter(email.eq(k)).select(User::as_select()).first(conn): LIMIT bound.
\set i random(0, 9999)
\set one 1
SELECT "users"."id", "users"."email", "users"."name", "users"."karma" FROM "users" WHERE ("users"."email" = 'user' || :i || '@example.com') LIMIT :one;
