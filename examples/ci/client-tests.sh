#!/usr/bin/env bash
# Recipe 1: a client project's tests against the itsOCR mock, in any CI.
#
#   ci/client-tests.sh COMMAND [ARGS...]        e.g.  ci/client-tests.sh python -m pytest -q
#
# Serves the mock in the background (a fresh in-memory state), waits until it answers
# GET /_mock/health, runs COMMAND with the mock's URLs and a demo token in its environment,
# then stops the mock. When COMMAND fails, the mock's journal (every API request it received,
# as JSON) is saved for the CI to keep as an artifact. The exit code is COMMAND's.
#
# Read from the environment (all optional):
#   ITSOCR_MOCK_PORT     the port to serve on (default 8080)
#   ITSOCR_MOCK_JOURNAL  where the journal is saved on failure (default itsocr-mock-journal.json)
#   ITSOCR_MOCK_LOG      the mock's log (default itsocr-mock.log)
# Given to COMMAND:
#   ITSOCR_MOCK_URL      the mock's origin; its control API is under /_mock (the kit's pytest
#                        plugin, `itsocr_mock`, drives this mock when the variable is set)
#   ITSOCR_BASE_URL      the API base to point your client at (.../api/v1)
#   ITSOCR_TOKEN         the Free plan's demo token (10 images a month; GET /_mock/health
#                        lists the Pro and Enterprise ones)
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS...]  (the command that runs your client's tests)" >&2
    exit 2
fi
port="${ITSOCR_MOCK_PORT:-8080}"
journal="${ITSOCR_MOCK_JOURNAL:-itsocr-mock-journal.json}"
log="${ITSOCR_MOCK_LOG:-itsocr-mock.log}"
export ITSOCR_MOCK_URL="http://127.0.0.1:$port"
export ITSOCR_BASE_URL="$ITSOCR_MOCK_URL/api/v1"
export ITSOCR_TOKEN="itsocr_FreeDemoToken0000000000000000000"

itsocr-mock serve --port "$port" --state :memory: >"$log" 2>&1 &
mock=$!
trap 'kill "$mock" 2>/dev/null || true; wait "$mock" 2>/dev/null || true' EXIT

# Up to 30 s for the mock to answer; stop early if it exited (a port in use, say).
for _ in $(seq 150); do
    curl -fsS -o /dev/null "$ITSOCR_MOCK_URL/_mock/health" 2>/dev/null && break
    if ! kill -0 "$mock" 2>/dev/null; then
        echo "the itsOCR mock did not start:" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 0.2
done
if ! curl -fsS -o /dev/null "$ITSOCR_MOCK_URL/_mock/health"; then
    echo "the itsOCR mock does not answer on $ITSOCR_MOCK_URL after 30 s:" >&2
    cat "$log" >&2
    exit 1
fi

status=0
"$@" || status=$?
if [ "$status" -ne 0 ]; then
    curl -fsS "$ITSOCR_MOCK_URL/_mock/requests" -o "$journal"
    echo "client tests failed: what the mock received is in $journal, its log in $log" >&2
fi
exit "$status"
