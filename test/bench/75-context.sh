#!/bin/bash
# 75-context.sh: what keying by context costs on a hit (issue 11, item 6).
#
# Two copies of a cheap STABLE PL/pgSQL function, 1,000,000 wrapper hits
# over 1,000 keys per statement, five rounds, the two interleaved:
#   (k) ctx_keyed(i): keyed as every non-IMMUTABLE SECURITY INVOKER function
#       is by default: the role, the 12 settings of cachier.key_settings and
#       the search path;
#   (p) ctx_plain(i): per_role => false and a session with
#       cachier.key_settings = '': keyed by the search path only (what a
#       shared entry always holds).
# Target: (k)/(p) <= 1.1 on the median per-call time.
set -euo pipefail
# shellcheck source=test/bench/lib.sh
. "$(dirname "$0")/lib.sh"

header "Issue 11: a hit keyed by role and the default settings vs by neither"

sql <<'EOF'
CREATE FUNCTION bench.ctx_keyed(i int) RETURNS int
    LANGUAGE plpgsql STABLE AS 'BEGIN RETURN i * 2; END';
CREATE FUNCTION bench.ctx_plain(i int) RETURNS int
    LANGUAGE plpgsql STABLE AS 'BEGIN RETURN i * 2; END';
SELECT cachier_memoize('bench.ctx_keyed(int)') IS NOT NULL AS memoized;
SELECT cachier_memoize('bench.ctx_plain(int)', per_role => false) IS NOT NULL AS memoized;
EOF

keyed='SELECT count(bench.ctx_keyed_cached(i %% 1000)) FROM generate_series(1, 1000000) i'
plain='SELECT count(bench.ctx_plain_cached(i %% 1000)) FROM generate_series(1, 1000000) i'

# warm: every key stored once, each in the session kind that reads it
q "SELECT count(bench.ctx_keyed_cached(i)) FROM generate_series(0, 999) i" >/dev/null
PGOPTIONS='-c cachier.key_settings=' \
	q "SELECT count(bench.ctx_plain_cached(i)) FROM generate_series(0, 999) i" >/dev/null

echo "timing hits: 5 rounds x 2 statements of 1,000,000 calls ..."
for r in 1 2 3 4 5; do
	q "CALL bench.measure('context', '(k) keyed by role + settings', 1, '$keyed', 1000000, 1, $r)"
	PGOPTIONS='-c cachier.key_settings=' \
		q "CALL bench.measure('context', '(p) keyed by neither', 2, '$plain', 1000000, 1, $r)"
done

sql <<'EOF'
\echo
SELECT (SELECT count(*) FROM cachier.entries
         WHERE fn_id = cachier.fn_id('bench.ctx_keyed(int)')) AS keyed_entries,
       (SELECT count(*) FROM cachier.entries
         WHERE fn_id = cachier.fn_id('bench.ctx_plain(int)')) AS plain_entries,
       (SELECT length(args) FROM cachier.entries
         WHERE fn_id = cachier.fn_id('bench.ctx_keyed(int)') LIMIT 1) AS keyed_bytes,
       (SELECT length(args) FROM cachier.entries
         WHERE fn_id = cachier.fn_id('bench.ctx_plain(int)') LIMIT 1) AS plain_bytes;
SELECT label AS variant, runs AS statements,
       round(median_us::numeric, 3) AS "median µs/call",
       round(min_us::numeric, 3) AS "min µs/call"
  FROM bench.summary WHERE section = 'context' ORDER BY ord;
SELECT round((max(median_us) FILTER (WHERE ord = 1) /
              max(median_us) FILTER (WHERE ord = 2))::numeric, 3) AS "(k)/(p) median",
       '<= 1.1' AS target
  FROM bench.summary WHERE section = 'context';
EOF
echo "$(machine_load)"
