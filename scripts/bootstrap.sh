#!/usr/bin/env bash
# Set up a development/CI machine from the project's own files.
#   - Debian packages: installs only the ones that are missing (needs root or sudo).
#   - .venv with pacelight installed editable, with the extras given in $PACELIGHT_EXTRAS.
# Idempotent: a stamp keyed on pyproject.toml and this script skips work already done.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(espeak-ng mosquitto mosquitto-clients portaudio19-dev libsndfile1 sox
              chromium chromium-driver postgresql sysbench)
EXTRAS="${PACELIGHT_EXTRAS:-host,dev}"
PY="${PYTHON:-python3}"
STAMP_DIR=.stamps
mkdir -p "$STAMP_DIR"

log() { printf '[bootstrap] %s\n' "$*" >&2; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts these services on install; pacelight starts its own instances on free ports.
  for svc in mosquitto postgresql; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
      $SUDO systemctl stop "$svc" || true
    fi
  done
fi

key=$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -c1-16)-$EXTRAS
if [ -x .venv/bin/pacelight ] && [ "$(cat "$STAMP_DIR/venv" 2>/dev/null)" = "$key" ]; then
  exit 0
fi
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$PY" -m venv .venv
fi
log "installing pacelight[$EXTRAS] into .venv"
.venv/bin/python -m pip install -q --upgrade pip setuptools wheel
.venv/bin/python -m pip install -q -e ".[$EXTRAS]"
echo "$key" > "$STAMP_DIR/venv"
log "ready"
