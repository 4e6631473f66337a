#!/usr/bin/env bash
# Stops the demo cluster started by scripts/demo.sh.
source "$(dirname "$0")/common.sh"
stop_cluster "${PG_CREDIT_DEMO_DIR:-/tmp/pg_credit_demo}"
echo "demo cluster stopped"
