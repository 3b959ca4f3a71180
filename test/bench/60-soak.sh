# shellcheck shell=bash
# 60-soak.sh: the 10-minute soak (issue 9): test/scripts/soak.sh with
# SOAK_SECONDS (default 600) against the bench cluster.  It reports the
# clients' errors, the private memory of every pgbench backend and of the
# launcher over the run (with its slope), the transaction IDs used, and
# how many transaction IDs 8,000 hits use.  A short version runs in the
# test suite (test/t/030_soak.pl).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
header "Issue 9: soak, ${SOAK_SECONDS:-600} s of mixed load"
"$here/../scripts/soak.sh" "${SOAK_SECONDS:-600}"
