#!/usr/bin/env bash
# Recipe 2: contract tests of an implementation of the itsOCR API, with JUnit XML reports.
#
#   ci/contract-tests.sh URL        URL: the running implementation's API base (.../api/v1)
#
# Runs, both to the end whatever the first finds:
#   1. the kit's contract suite (`itsocr-mock check`): every clause of the contract, the clause
#      table in the log, JUnit XML in $ITSOCR_REPORTS/contract-suite.xml;
#   2. Schemathesis's CLI with the kit's schemathesis.toml and hooks (the plain command of the
#      kit's README), JUnit XML in $ITSOCR_REPORTS/schemathesis.xml.
# Exit code 0 when both pass, 1 when either found a problem.
#
# Read from the environment:
#   ITSOCR_TOKEN    a token of the implementation; Schemathesis uploads with it, so its account
#                   must not run out of images (an unlimited plan)
#   ITSOCR_PLAN     that account's plan (default enterprise)
#   ITSOCR_BUDGET   requests the suite may spend that count as usage (default 500; an
#                   implementation with the mock's control API uses its own accounts instead)
#   ITSOCR_REPORTS  the reports' directory (default reports)
set -euo pipefail

url="${1:?usage: $0 URL, the API base of the implementation, e.g. http://127.0.0.1:3000/api/v1}"
: "${ITSOCR_TOKEN:?set ITSOCR_TOKEN to a token of the implementation (an unlimited plan)}"
reports="${ITSOCR_REPORTS:-reports}"
mkdir -p "$reports"
reports="$(cd "$reports" && pwd)"

# Up to 60 s for the implementation to come up: its CORS preflight needs no token.
for _ in $(seq 60); do
    curl -s -o /dev/null -X OPTIONS "$url/ocr" && break
    sleep 1
done

status=0
# 1. The contract suite; it reads the token from ITSOCR_TOKEN.
itsocr-mock check "$url" --plan "${ITSOCR_PLAN:-enterprise}" --budget "${ITSOCR_BUDGET:-500}" \
    -- --junitxml="$reports/contract-suite.xml" || status=1

# 2. Schemathesis reads schemathesis.toml from the directory it starts in: a copy of the kit's
# contract files (installed with it), so that its caches stay out of your checkout too.
kit="$(python -c 'from mockserver.resources import data_path; print(data_path("schemathesis.toml").parent)')"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$kit/openapi.yaml" "$kit/schemathesis.toml" "$work/"
(
    cd "$work"
    schemathesis run openapi.yaml --url "$url" --header "Authorization: Bearer $ITSOCR_TOKEN" \
        --report junit --report-junit-path "$reports/schemathesis.xml"
) || status=1

exit "$status"
