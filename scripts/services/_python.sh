# Sourced by service scripts: a Python virtualenv under the cache folder that
# holds the Python tools the tests use (moto's server, pyarrow as an
# independent Parquet reader). Installed once; later calls only check it.
#   ensure_python_packages 'moto[server]==5.1.*' 'pyarrow>=15'
RUNNEL_VENV="${RUNNEL_VENV:-$RUNNEL_CACHE/venv}"
ensure_python_packages() {
  if [ ! -x "$RUNNEL_VENV/bin/python" ]; then
    log "creating a Python virtualenv in $RUNNEL_VENV"
    python3 -m venv "$RUNNEL_VENV" || return 1
  fi
  local missing=()
  for spec in "$@"; do
    local name="${spec%%[\[=<>]*}"
    "$RUNNEL_VENV/bin/python" -m pip show -q "$name" >/dev/null 2>&1 || missing+=("$spec")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]} into $RUNNEL_VENV"
    "$RUNNEL_VENV/bin/python" -m pip install -q --disable-pip-version-check "${missing[@]}" >&2 || return 1
  fi
}
