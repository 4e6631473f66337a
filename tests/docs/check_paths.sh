#!/usr/bin/env bash
# Every file a comment or a page names exists: paths like src/guard/row.rs, sql/guard.sql,
# docs/holds.md or tests/stress/crash.sh in Rust and SQL comments, docs, scripts and the README.
# (Names that are not paths of this repository, like PostgreSQL's own source files, are written
# without a directory of ours.)
set -uo pipefail
cd "$(dirname "$0")/../.."
missing=0
while IFS=: read -r file line path; do
    path=${path%%[),.;:\`\'\"]}
    [ -e "$path" ] || { echo "$file:$line: names $path, which does not exist"; missing=$((missing + 1)); }
done < <(git ls-files -- '*.rs' '*.sql' '*.md' '*.sh' '*.spec' '*.toml' Makefile .ci/run \
             ':!sql/updates/*' ':!tests/upgrade/versions/*' \
         | xargs grep -noE '(^|[^A-Za-z0-9_./-])(src|sql|docs|tests|bench|scripts|credit_core|demo)/[A-Za-z0-9_./-]*[A-Za-z0-9_]' \
         | sed -E 's/^([^:]*):([0-9]*):[^A-Za-z]?/\1:\2:/')
if ((missing)); then echo "$missing references to files that do not exist"; exit 1; fi
echo "every path named in comments and pages exists"
