# Sourced by the service scripts: where downloads and data live, and the ports.
# Tests read the same values (test/kit/services.ts) and use the same defaults.
RUNNEL_CACHE="${RUNNEL_CACHE:-$HOME/.cache/runnel}"
mkdir -p "$RUNNEL_CACHE"
log() { echo "[$(basename "$0" .sh)] $*" >&2; }
# wait_for <seconds> <command...>: retries the command until it succeeds.
wait_for() {
  local limit=$1; shift
  for _ in $(seq 1 $((limit * 4))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  return 1
}
