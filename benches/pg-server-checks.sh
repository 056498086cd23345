#!/usr/bin/env bash
# Server-side cross-checks of the PostgreSQL figures in BENCHMARKS.md, with PostgreSQL's
# own client tools only (psql, pgbench; no Rust, no Diesel):
#
#   1. hits with 8 clients: `pgbench -M prepared` of Diesel's `.first()` statement
#      (benches/pg/hit-first.sql) against the library's (benches/pg/hit-library.sql), in
#      alternating runs;
#   2. `EXPLAIN ANALYZE` of the bulk statements for 10,000 keys, half of them stored: the
#      library's two (insert of the missing keys, read of every key), and the hand-written
#      `insert_all+select` pair;
#   3. ten executions of each bulk statement on one session, the table reset and analyzed
#      before each: kept prepared under the default `plan_cache_mode = auto` (what a
#      statement gets that Diesel caches: from the sixth execution on, PostgreSQL may switch
#      to a generic plan) and planned for its values each time (`force_custom_plan`: what
#      the library's unnamed statements get). Also the one-statement bulk of the library
#      before this redesign (`WITH .. UNNEST .. row_number() .. INSERT .. NOT EXISTS ..
#      UNION ALL ..`, as the old bench ran it), for the 282 ms the old bench reported;
#   4. the plan a kept statement gets when its first executions were small (100 keys) and
#      later ones large (10,000), as in the old bench, which ran 100, 1,000 and 10,000
#      keys on one connection.
#
# Usage: benches/pg-server-checks.sh [1|2|3|4 ...]   (default: all)
# Env:   PG_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test)
#        PGBENCH_SECONDS per pgbench run (default 5), PGBENCH_ROUNDS (default 3)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
url=${PG_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
seconds=${PGBENCH_SECONDS:-5}
rounds=${PGBENCH_ROUNDS:-3}
parts=("$@")
((${#parts[@]})) || parts=(1 2 3 4)
schema=goc_check_$$
work=$(mktemp -d)

export PGOPTIONS="-c search_path=$schema -c synchronous_commit=off"
q() { psql -X -q -v ON_ERROR_STOP=1 "$url" "$@"; }
cleanup() {
    PGOPTIONS='' psql -X -q "$url" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

PGOPTIONS='' q -c "CREATE SCHEMA $schema"
q -c "CREATE TABLE users (id BIGSERIAL PRIMARY KEY, email TEXT NOT NULL UNIQUE,
      name TEXT NOT NULL, karma INTEGER NOT NULL)"

# SQL that empties users and stores the rows of user0 .. user{$1 - 1}, analyzed.
reset_sql() {
    cat <<SQL
TRUNCATE users RESTART IDENTITY;
INSERT INTO users (email, name, karma)
  SELECT 'user' || i || '@example.com', 'Bench User', 0 FROM generate_series(0, $1 - 1) i;
VACUUM ANALYZE users;
SQL
}

# The bulk statements, as the library and the shapes send them (library: copied from
# Diesel's debug output of get_or_create_many at the commit BENCHMARKS.md names).
prepare_sql() {
    cat <<'SQL'
PREPARE lib_insert(text[], text[], int4[]) AS
  INSERT INTO "users" ("email", "name", "karma") SELECT "__goc_i"."__goc_k0", "__goc_i"."__goc_v0", "__goc_i"."__goc_v1" FROM UNNEST($1, $2, $3) WITH ORDINALITY AS "__goc_i"("__goc_k0", "__goc_v0", "__goc_v1", "__goc_ord") LEFT JOIN "users" ON "users"."email" = "__goc_i"."__goc_k0" WHERE "users".ctid IS NULL ORDER BY "__goc_i"."__goc_k0", "__goc_i"."__goc_ord" ON CONFLICT DO NOTHING RETURNING tableoid, CAST(ROW("users"."id") AS text), TRUE;
PREPARE lib_read(text[]) AS
  SELECT "__goc_i"."__goc_ord", CAST(ROW("users"."id") AS text), "users"."id", "users"."email", "users"."name", "users"."karma" FROM UNNEST($1) WITH ORDINALITY AS "__goc_i"("__goc_k0", "__goc_ord") JOIN "users" ON "users"."email" = "__goc_i"."__goc_k0";
PREPARE hand_insert(text[], text[], int4[]) AS
  INSERT INTO users (email, name, karma) SELECT * FROM unnest($1, $2, $3) ON CONFLICT (email) DO NOTHING RETURNING id;
PREPARE hand_select(text[]) AS
  SELECT "users"."id", "users"."email", "users"."name", "users"."karma" FROM "users" WHERE "users"."email" = ANY($1);
PREPARE old_lib(text[], text[], int4[]) AS
  WITH "__goc_i" AS (SELECT *, row_number() OVER (PARTITION BY "email" ORDER BY "__goc_ord") = 1 AS "__goc_first" FROM UNNEST($1, $2, $3) WITH ORDINALITY AS "__goc_v"("email", "name", "karma", "__goc_ord")), "__goc_inserted" AS (INSERT INTO "users" ("email", "name", "karma") SELECT "email", "name", "karma" FROM "__goc_i" WHERE "__goc_first" AND NOT EXISTS (SELECT 1 FROM "users" WHERE "users"."email" = "__goc_i"."email") ORDER BY "email" ON CONFLICT ("email") DO NOTHING RETURNING "users"."id", "users"."email", "users"."name", "users"."karma") SELECT "__goc_i"."__goc_ord", "__goc_i"."__goc_first", "__goc_inserted".* FROM "__goc_i" JOIN "__goc_inserted" ON "__goc_inserted"."email" = "__goc_i"."email" UNION ALL SELECT "__goc_i"."__goc_ord", FALSE, "users"."id", "users"."email", "users"."name", "users"."karma" FROM "__goc_i" JOIN "users" ON "users"."email" = "__goc_i"."email";
-- 10,000 keys, every other one among the 5,000 stored rows (the benches' half_existing).
SELECT array_agg('user' || CASE WHEN i % 2 = 0 THEN i / 2 ELSE 5000 + i / 2 END || '@example.com' ORDER BY i) AS keys,
       array_fill('Bench User'::text, ARRAY[10000]) AS names, array_fill(0, ARRAY[10000]) AS karmas
  FROM generate_series(0, 9999) i \gset
SQL
}

part1() {
    echo "## 1. hits, 8 clients, pgbench -M prepared -c 8 -j 2 -T $seconds, $rounds rounds"
    echo
    reset_sql 10000 | q -f -
    local first library
    echo "| round | .first() tps | library tps | library / .first() |"
    echo "|---:|---:|---:|---:|"
    for ((r = 1; r <= rounds; r++)); do
        first=$(pgbench -n -M prepared -c 8 -j 2 -T "$seconds" -f "$here/pg/hit-first.sql" "$url" 2>/dev/null |
            awk '/^tps/ { print $3 }')
        library=$(pgbench -n -M prepared -c 8 -j 2 -T "$seconds" -f "$here/pg/hit-library.sql" "$url" 2>/dev/null |
            awk '/^tps/ { print $3 }')
        awk -v r="$r" -v f="$first" -v l="$library" 'BEGIN { printf "| %d | %.0f | %.0f | %.3f |\n", r, f, l, l / f }'
    done
    echo
}

part2() {
    echo "## 2. EXPLAIN ANALYZE: a hit; the bulk statements for 10,000 keys, 5,000 stored (custom plans)"
    {
        prepare_sql
        echo "SET plan_cache_mode = force_custom_plan;"
        # A hit: LIMIT 2 on the unique index stops after the one row there is.
        reset_sql 10000
        echo "\\echo '### hit: the library SELECT .. LIMIT 2'"
        echo "EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) SELECT \"users\".\"id\", \"users\".\"email\", \"users\".\"name\", \"users\".\"karma\" FROM \"users\" WHERE \"email\" = 'user4242@example.com' LIMIT 2;"
        for statement in "lib_insert(:'keys', :'names', :'karmas')" "lib_read(:'keys')" \
            "hand_insert(:'keys', :'names', :'karmas')" "hand_select(:'keys')"; do
            reset_sql 5000
            # The library's read follows its insert: run the insert first, untimed.
            [[ $statement == lib_read* ]] && echo "\\o /dev/null" && echo "EXECUTE lib_insert(:'keys', :'names', :'karmas');" && echo "\\o"
            [[ $statement == hand_select* ]] && echo "\\o /dev/null" && echo "EXECUTE hand_insert(:'keys', :'names', :'karmas');" && echo "\\o"
            echo "\\echo '### ${statement%%(*}'"
            echo "EXPLAIN (ANALYZE, COSTS OFF, TIMING ON, SUMMARY ON) EXECUTE $statement;"
        done
    } >"$work/explain.sql"
    # Lines cut: a plan prints the 10,000 keys of an array it was given.
    q -f "$work/explain.sql" | cut -c1-160
    echo
}

part3() {
    echo "## 3. ten executions of each bulk statement on one session, reset + ANALYZE before each"
    echo
    echo "Statements in turn within each execution round; ms as psql's \\timing reports them."
    echo "library = its insert + its read; insert_all+select = the hand-written pair;"
    echo "old = the one-statement bulk of the library before the redesign."
    local mode
    for mode in auto force_custom_plan; do
        {
            prepare_sql
            echo "SET plan_cache_mode = $mode;"
            for ((i = 0; i < 10; i++)); do
                for pair in "lib_insert(:'keys', :'names', :'karmas');lib_read(:'keys')" \
                    "hand_insert(:'keys', :'names', :'karmas');hand_select(:'keys')" \
                    "old_lib(:'keys', :'names', :'karmas')"; do
                    reset_sql 5000
                    echo "\\o /dev/null"
                    echo "\\timing on"
                    tr ';' '\n' <<<"$pair" | sed 's/^/EXECUTE /; s/$/;/'
                    echo "\\timing off"
                    echo "\\o"
                done
            done
        } >"$work/loop.sql"
        echo
        echo "plan_cache_mode = $mode"
        echo
        echo "| execution | library | insert_all+select | old |"
        echo "|---:|---:|---:|---:|"
        q -f "$work/loop.sql" | awk '/^Time:/ {
            t[n++] = $2
            if (n == 5) { printf "| %d | %.1f | %.1f | %.1f |\n", ++row, t[0] + t[1], t[2] + t[3], t[4]; n = 0 }
        }'
    done
    echo
}

part4() {
    echo "## 4. a plan made for small calls: six executions of 100 keys, then three of 10,000"
    echo
    echo "As the old bench ran its statement (sizes 100, 1,000, then 10,000 on one"
    echo "connection), or an importer whose batches vary. ms of the 10,000-key executions."
    echo
    echo "| plan_cache_mode | library (insert + read) | old |"
    echo "|---|---|---|"
    local mode
    for mode in auto force_custom_plan; do
        {
            prepare_sql
            # 100 keys, half of them stored after a reset to 50 rows.
            echo "SELECT array_agg('user' || CASE WHEN i % 2 = 0 THEN i / 2 ELSE 50 + i / 2 END || '@example.com' ORDER BY i) AS small,"
            echo "       array_fill('Bench User'::text, ARRAY[100]) AS small_names, array_fill(0, ARRAY[100]) AS small_karmas"
            echo "  FROM generate_series(0, 99) i \\gset"
            echo "SET plan_cache_mode = $mode;"
            echo "\\o /dev/null"
            for ((i = 0; i < 6; i++)); do
                reset_sql 50
                echo "EXECUTE lib_insert(:'small', :'small_names', :'small_karmas');"
                echo "EXECUTE lib_read(:'small');"
                reset_sql 50
                echo "EXECUTE old_lib(:'small', :'small_names', :'small_karmas');"
            done
            for ((i = 0; i < 3; i++)); do
                reset_sql 5000
                echo "\\timing on"
                echo "EXECUTE lib_insert(:'keys', :'names', :'karmas');"
                echo "EXECUTE lib_read(:'keys');"
                echo "\\timing off"
                reset_sql 5000
                echo "\\timing on"
                echo "EXECUTE old_lib(:'keys', :'names', :'karmas');"
                echo "\\timing off"
            done
            echo "\\o"
        } >"$work/small.sql"
        q -f "$work/small.sql" | awk -v mode="$mode" '/^Time:/ {
            t[n++] = $2
            if (n == 3) { lib = lib sep sprintf("%.1f", t[0] + t[1]); old = old sep sprintf("%.1f", t[2]); sep = ", "; n = 0 }
        } END { printf "| %s | %s | %s |\n", mode, lib, old }'
    done
    echo
}

for part in "${parts[@]}"; do
    "part$part"
done
