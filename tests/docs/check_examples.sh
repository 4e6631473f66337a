#!/usr/bin/env bash
# Runs the SQL examples of every docs/*.md page and compares their output with the page.
# In a page, a ```sql block is run (blocks run in order, in a fresh database per page); when the
# next block is a ```text block, the output of the SQL must be exactly that text.
# Usage: check_examples.sh SOCKET_DIR PORT   (a running cluster with pg_credit installed)
set -uo pipefail
DIR=$1; PORT=$2
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PSQL=/usr/lib/postgresql/15/bin/psql
OUT="$ROOT/target/docs-examples"
rm -rf "$OUT"; mkdir -p "$OUT"
status=0
# Trailing spaces and trailing blank lines do not count.
# Pages may create roles named doc_*: they are dropped before and after each page.
drop_doc_roles() {
    "$PSQL" -X -q -h "$DIR" -p "$PORT" -U postgres -d postgres -c "DO \$\$ DECLARE r name; BEGIN
        FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE 'doc\\_%' ORDER BY oid DESC LOOP EXECUTE format('DROP ROLE %I', r); END LOOP;
    END \$\$" >/dev/null
}
trim() { sed 's/[[:space:]]*$//' | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'; }
for page in "$ROOT"/docs/*.md; do
    name=$(basename "$page" .md)
    work="$OUT/$name"; mkdir -p "$work"
    # Split the page: script.sql with a marker before each sql block, expected.N for checked blocks.
    awk -v work="$work" '
        /^```sql[[:space:]]*$/ { n++; insql = 1; print "\\echo @@BLOCK " n > (work "/script.sql"); last = n; next }
        /^```text[[:space:]]*$/ { intext = 1; file = work "/expected." last; printf "" > file; next }
        /^```[[:space:]]*$/ { insql = 0; intext = 0; next }
        insql { print > (work "/script.sql") }
        intext { print > file }
    ' "$page"
    [ -f "$work/script.sql" ] || continue
    db="docs_${name//[^a-z0-9_]/_}"
    drop_doc_roles
    "$PSQL" -X -q -h "$DIR" -p "$PORT" -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1
    (echo '\set SHOW_CONTEXT never'; echo 'CREATE EXTENSION pg_credit;'; cat "$work/script.sql") \
        | "$PSQL" -X -q -h "$DIR" -p "$PORT" -U postgres -d "$db" > "$work/output" 2>&1
    awk -v work="$work" '/^@@BLOCK / { file = work "/actual." $2; printf "" > file; next } file { print > file }' "$work/output"
    for exp in "$work"/expected.*; do
        [ -e "$exp" ] || continue
        n=${exp##*.}
        if ! diff -u <(trim < "$exp") <(trim < "$work/actual.$n" 2>/dev/null) > "$work/diff.$n"; then
            echo "docs/$name.md: example $n differs:"; cat "$work/diff.$n"; status=1
        fi
    done
    "$PSQL" -X -q -h "$DIR" -p "$PORT" -U postgres -d postgres -c "DROP DATABASE $db" >/dev/null
    drop_doc_roles
    echo "docs/$name.md: $(ls "$work"/expected.* 2>/dev/null | wc -l) checked examples"
done
exit $status
