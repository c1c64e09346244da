#!/usr/bin/env bash
# Chromium from Debian, for the console's browser tests (test/console/), which
# drive it with playwright-core (never `playwright install`: browser downloads
# are refused here). Not a daemon: each test file launches its own headless
# browser; `start` installs it once and checks that it runs.
set -euo pipefail
. "$(dirname "$0")/_env.sh"
BIN="${RUNNEL_CHROMIUM:-/usr/bin/chromium}"
works() { "$BIN" --headless --no-sandbox --disable-gpu --version >/dev/null 2>&1; }

case "${1:-start}" in
  start)
    if ! works; then
      log "installing Chromium from Debian"
      if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
      $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null \
        || { log "apt-get could not install chromium; install it by hand (apt-get install chromium)"; exit 1; }
    fi
    works || { log "$BIN does not run; see: $BIN --headless --no-sandbox --version"; exit 1; }
    log "ready: $("$BIN" --version 2>/dev/null | head -1)"
    ;;
  stop) log "nothing to stop (tests launch and close their own browser)" ;;
  status) works && echo "chromium: $("$BIN" --version 2>/dev/null | head -1)" || { echo "chromium: not installed"; exit 1; } ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
