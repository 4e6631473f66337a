# Shared by the demo, test and bench scripts. Sourced, not run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config   # not Debian's /usr/bin wrapper (it picks the newest server-dev)
PGBIN=/usr/lib/postgresql/15/bin
PGXS_TEST=/usr/lib/postgresql/15/lib/pgxs/src/test
PGRX_VERSION=0.18.1
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Installs whatever is missing; a second run does nothing.
# ensure_deps [extra Debian packages...]: the test command adds what its browser layer needs.
ensure_deps() {
    local pkgs=(postgresql-15 postgresql-server-dev-15 postgresql-15-cron libclang-dev clang sudo "$@")
    local missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if ((${#missing[@]})); then
        log "installing Debian packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # The postgresql package would start a 'main' cluster; we never use it.
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    # The test command's format and lint layer.
    if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
        log "installing rustfmt and clippy"
        rustup component add rustfmt clippy
    fi
    if ! cargo pgrx --version 2>/dev/null | grep -q " $PGRX_VERSION"; then
        log "installing cargo-pgrx $PGRX_VERSION (takes several minutes)"
        cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
    fi
    if ! grep -qs "pg15 = \"$PG_CONFIG\"" "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
        log "cargo pgrx init --pg15 $PG_CONFIG"
        cargo pgrx init --pg15 "$PG_CONFIG" >/dev/null
    fi
    id postgres >/dev/null 2>&1 || { log "postgres user missing"; exit 1; }
}

# Builds and installs the extension into the system PostgreSQL 15 (root may write there).
install_extension() {
    local profile=${1:-}
    log "building and installing pg_credit ${profile:+($profile)}"
    (cd "$ROOT" && cargo pgrx install --pg-config "$PG_CONFIG" ${profile:+--$profile} >/dev/null)
    # The update scripts from earlier versions (UPDATING.md).
    install -m 644 "$ROOT"/sql/updates/pg_credit--*--*.sql "$("$PG_CONFIG" --sharedir)/extension/"
}

# start_cluster DIR PORT: a throwaway cluster owned by postgres, socket in DIR, loopback only.
start_cluster() {
    local dir=$1 port=$2
    stop_cluster "$dir"
    rm -rf "$dir"
    mkdir -p "$dir"
    chown postgres: "$dir"
    runuser -u postgres -- "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust --no-locale -E UTF8 >/dev/null
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
shared_buffers = 512MB
max_connections = 100
fsync = on
synchronous_commit = on
max_prepared_transactions = 10
CONF
    # EXTRA_CONF: more settings, e.g. pg_cron for the scheduling test.
    [ -z "${EXTRA_CONF:-}" ] || printf '%s\n' "$EXTRA_CONF" >>"$dir/data/postgresql.conf"
    # RUST_BACKTRACE set in the server's environment: pgrx would append a Rust backtrace to error
    # DETAILs; pg_credit must never let one reach a client, and every test's output would show it.
    RUST_BACKTRACE=${RUST_BACKTRACE-full} runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
}

stop_cluster() {
    local dir=$1
    if [ -f "$dir/data/postmaster.pid" ]; then
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
}

# psql against a cluster started by start_cluster.
pg() { local dir=$1 port=$2; shift 2; "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres "$@"; }

# Benchmark helpers: median of numbers on stdin (any whitespace), ratio a/b to two decimals.
median() { tr -s ' \t' '\n' | grep . | sort -g | awk '{a[NR]=$1} END{ if (NR%2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }

# The courier (courier/): built in release, the profile the extension's install and the benches use.
build_courier() {
    log "building pg_credit_courier"
    (cd "$ROOT" && cargo build --release -p pg_credit_courier --quiet)
}
courier_binary() { echo "$ROOT/target/release/pg_credit_courier"; }

# Citus 13.2.2 for the Citus layer (docs/citus.md): not packaged for Debian 12, so built from the
# source release kept in third_party/citus (GitHub is not reachable from every build machine), with
# the one patch PostgreSQL 15.20 needs. Built once into target/citus and installed into the
# system PostgreSQL 15; a second run does nothing. Returns 1 (and says why) when it cannot.
CITUS_VERSION=13.2.2
ensure_citus() {
    local pkglib; pkglib=$("$PG_CONFIG" --pkglibdir)
    if [ -f "$pkglib/citus.so" ] && grep -qs "default_version = '13.2" "$("$PG_CONFIG" --sharedir)/extension/citus.control"; then
        return 0
    fi
    ensure_deps liblz4-dev libzstd-dev libkrb5-dev make gcc
    local build="$ROOT/target/citus"
    log "building Citus $CITUS_VERSION from third_party/citus (about a minute)"
    rm -rf "$build"; mkdir -p "$build"
    tar -xJf "$ROOT/third_party/citus/citus-$CITUS_VERSION.tar.xz" -C "$build" || return 1
    local src="$build/citus-$CITUS_VERSION"
    patch -s -p1 -d "$src" <"$ROOT/third_party/citus/pg15.20-have_createdb_privilege.patch" || return 1
    (cd "$src" && PG_CONFIG="$PG_CONFIG" ./configure --without-libcurl >"$build/configure.log" 2>&1) \
        || { tail -20 "$build/configure.log"; return 1; }
    (cd "$src" && make -j"$(nproc)" >"$build/make.log" 2>&1 && make install >>"$build/make.log" 2>&1) \
        || { tail -30 "$build/make.log"; return 1; }
}
