#!/usr/bin/env bash
# What `#[derive(GetOrCreate)]` adds to a crate's `cargo check` time.
#
# Generates crates with 1, 10 and 100 Diesel models in a temp dir, in three flavours:
#   plain        #[derive(Queryable, Selectable)] only
#   derive       the same models with GetOrCreate, #[lookup] and #[default]
#   derive+call  the same, plus one function per model that calls get_or_create on a
#                PgConnection (type-checks the Strategy bounds of each model)
# They depend on this workspace's get-or-create-core by path (feature "postgres") and
# share one CARGO_TARGET_DIR, so the dependencies are built once. Only the generated crate
# is measured: touch its lib.rs, `cargo check`, best of 5.
#
# Usage: benches/compile-cost.sh [COUNTS...]     (default: 1 10 100)
# Env:   COMPILE_COST_DIR  where the crates and the shared target go
#                          (default: $TMPDIR/get-or-create-compile-cost, kept between runs)
#        RUNS              attempts per crate, the best is kept (default 5)
set -euo pipefail

workspace=$(cd "$(dirname "$0")/.." && pwd)
root=${COMPILE_COST_DIR:-${TMPDIR:-/tmp}/get-or-create-compile-cost}
runs=${RUNS:-5}
counts=("$@")
((${#counts[@]})) || counts=(1 10 100)
flavours=(plain derive derive+call)

mkdir -p "$root"
export CARGO_TARGET_DIR="$root/target"

# Writes a crate with $2 models of flavour $1 into $3.
generate() {
    local flavour=$1 n=$2 dir=$3 name=${1//+/_}_$2
    mkdir -p "$dir/src"
    cat >"$dir/Cargo.toml" <<EOF
[package]
name = "compile_cost_$name"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]

[dependencies]
diesel = { version = "~2.3.14", default-features = false, features = ["postgres"] }
get-or-create-core = { path = "$workspace/get-or-create-core", features = ["postgres"] }
EOF
    # The workspace's lock file, so that the crates build the versions the workspace uses.
    cp "$workspace/Cargo.lock" "$dir/Cargo.lock"
    {
        echo "#![allow(dead_code)]"
        echo "use diesel::prelude::*;"
        [[ $flavour == plain ]] || echo "use get_or_create_core::GetOrCreate;"
        for ((i = 0; i < n; i++)); do
            cat <<EOF

diesel::table! {
    table_$i (id) {
        id -> BigInt,
        email -> Text,
        name -> Text,
        karma -> Integer,
    }
}
EOF
            if [[ $flavour == plain ]]; then
                cat <<EOF

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = table_$i)]
pub struct Model$i {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub karma: i32,
}
EOF
            else
                cat <<EOF

#[derive(Debug, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = table_$i)]
pub struct Model$i {
    pub id: i64,
    #[lookup]
    pub email: String,
    #[default]
    pub name: String,
    #[default]
    pub karma: i32,
}
EOF
            fi
            if [[ $flavour == derive+call ]]; then
                cat <<EOF

pub fn get_or_create_$i(conn: &mut PgConnection, email: String) -> Result<Model$i, get_or_create_core::Error> {
    Model$i::get_or_create(conn, Model${i}Lookup { email }, Model${i}Defaults { name: String::new(), karma: 0 })
        .map(|(row, _)| row)
}
EOF
            fi
        done
    } >"$dir/src/lib.rs"
}

now() { date +%s.%N; }

# `cargo check` in $1, quiet unless it fails (the path dependencies' warnings would be
# replayed on every check).
check() {
    local out
    if ! out=$(cd "$1" && cargo check --quiet 2>&1); then
        printf '%s\n' "$out" >&2
        echo "cargo check failed in $1" >&2
        exit 1
    fi
}

# Best wall time, in seconds, of `cargo check` of the crate in $1 after touching it.
measure() {
    local dir=$1 best="" start end t
    check "$dir" # builds the dependencies the first time
    for ((r = 0; r < runs; r++)); do
        touch "$dir/src/lib.rs"
        start=$(now)
        check "$dir"
        end=$(now)
        t=$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')
        if [[ -z $best ]] || awk -v t="$t" -v b="$best" 'BEGIN { exit !(t < b) }'; then best=$t; fi
    done
    printf '%.2f' "$best"
}

declare -A seconds
for n in "${counts[@]}"; do
    for flavour in "${flavours[@]}"; do
        dir="$root/${flavour//+/_}_$n"
        rm -rf "$dir/src"
        generate "$flavour" "$n" "$dir"
        seconds[$flavour,$n]=$(measure "$dir")
        echo "  $flavour, $n models: ${seconds[$flavour,$n]} s" >&2
    done
done

echo
echo "cargo check of a generated crate (touch + check, best of $runs; $(nproc) cores)"
echo
echo "| models | plain (s) | derive (s) | derive + call (s) | derive - plain (s) | per model (ms) |"
echo "|---:|---:|---:|---:|---:|---:|"
for n in "${counts[@]}"; do
    plain=${seconds[plain,$n]}
    derive=${seconds[derive,$n]}
    call=${seconds[derive+call,$n]}
    extra=$(awk -v d="$derive" -v p="$plain" 'BEGIN { print d - p }')
    per=$(awk -v e="$extra" -v n="$n" 'BEGIN { print 1000 * e / n }')
    printf '| %d | %.2f | %.2f | %.2f | %.2f | %.0f |\n' "$n" "$plain" "$derive" "$call" "$extra" "$per"
done
