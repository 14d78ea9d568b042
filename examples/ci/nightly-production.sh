#!/usr/bin/env bash
# Recipe 3: a nightly check that production still keeps the contract, billed as little as possible.
#
#   ci/nightly-production.sh [URL]        URL: default https://itsocr.com/api/v1
#
# Runs the kit's contract suite (`itsocr-mock check`) at the observed level (every detail of the
# live behaviour: exact messages, order of checks, limits) with a real token, and writes the clause table as Markdown to the job summary
# ($GITHUB_STEP_SUMMARY; $ITSOCR_SUMMARY elsewhere, default itsocr-clauses.md). Exit code 0 when
# the contract holds, 1 when a clause fails or the suite could not run.
#
# Billing-safe defaults: at most $ITSOCR_BUDGET requests that can count as usage (default 10:
# about 310 of a dedicated Pro token's 500 images a month, as the README recommends),
# and never one that would use up the account's quota; what the budget does not cover is
# skipped, and the table says why.
#
# Read from the environment:
#   ITSOCR_TOKEN    a production token (keep it in a secret; it is never printed or passed
#                   on a command line)
#   ITSOCR_PLAN     its account's plan (default pro)
#   ITSOCR_BUDGET   at most this many billable requests (default 10)
#   ITSOCR_LEVEL    observed (default) or documented (only what the vendor's docs promise)
set -euo pipefail

url="${1:-https://itsocr.com/api/v1}"
: "${ITSOCR_TOKEN:?set ITSOCR_TOKEN (from a secret) to a production token}"
summary="${GITHUB_STEP_SUMMARY:-${ITSOCR_SUMMARY:-itsocr-clauses.md}}"
report="$(mktemp)"
trap 'rm -f "$report"' EXIT

status=0
itsocr-mock check "$url" --plan "${ITSOCR_PLAN:-pro}" --budget "${ITSOCR_BUDGET:-10}" \
    --level "${ITSOCR_LEVEL:-observed}" --report "$report" || status=$?

python - "$report" "$url" "$status" >>"$summary" <<'PY'
"""The clause table that `itsocr-mock check --report` wrote, as Markdown."""
import json
import sys

report, url, status = sys.argv[1], sys.argv[2], int(sys.argv[3])
verdict = "holds" if status == 0 else "is BROKEN" if status == 1 else "was not checked"
print(f"## itsOCR contract at {url}: {verdict}\n")
try:
    with open(report, encoding="utf-8") as handle:
        clauses = json.load(handle)["clauses"]
except (OSError, ValueError, KeyError):
    print("The contract suite did not run to the end: see the job's log.")
    sys.exit(0)
print("| clause | level | result | tests | why |")
print("| --- | --- | --- | --- | --- |")
for row in clauses:
    total = row["passed"] + row["failed"] + row["skipped"]
    why = (row["reasons"] or [""])[0] if row["result"] != "passed" else ""
    why = why.replace("|", "\\|").replace("\n", " ")
    mark = {"passed": "✅", "failed": "❌"}.get(row["result"], "⏭")
    print(f"| `{row['clause']}` | {row['level']} | {mark} {row['result']} "
          f"| {row['passed']}/{total} | {why} |")
PY
exit "$status"
