#!/usr/bin/env bash
# The whole test suite: starts the services the tests need, then runs bun test
# with a JUnit report (test-results/junit.xml). Extra arguments go to bun test.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh start || { echo "could not start the test services; fix the error above and rerun" >&2; exit 1; }
mkdir -p test-results
exec bun test --reporter=junit --reporter-outfile=test-results/junit.xml "$@"
