# Sourced by service scripts that install from Debian: apt_install <package...>
# installs what is missing without letting the packages start their own system
# services (a policy-rc.d that refuses, only while apt runs; kept if one exists).
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ "${#missing[@]}" -eq 0 ] && return 0
  local SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  log "installing ${missing[*]} from Debian (once)"
  local policy=/usr/sbin/policy-rc.d own=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod +x "$policy" && own=1
  fi
  local status=0
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } || status=1
  [ "$own" = 1 ] && $SUDO rm -f "$policy"
  [ "$status" = 0 ] || { log "apt-get could not install ${missing[*]}; see the lines above"; exit 1; }
}
