#!/usr/bin/env bash
# Install the pacelight appliance on Raspberry Pi OS Lite (64-bit, Debian 12 Bookworm, arm64).
#
#   sudo bash firmware/deploy/install-pi.sh [--source PATH] [--prefix /opt/pacelight] [--no-start]
#
# PATH is the pacelight wheel (pacelight-*.whl) or a source checkout (default: this checkout).
# Idempotent: re-running upgrades the environment and keeps /etc/pacelight/config.toml and the outbox.
set -euo pipefail

PREFIX=/opt/pacelight
SOURCE=""
START=1
SERVICE_USER=pacelight
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --source) SOURCE="$2"; shift 2 ;;
    --prefix) PREFIX="$2"; shift 2 ;;
    --no-start) START=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-pi.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ -n "$SOURCE" ]] || SOURCE="$(cd "$HERE/../.." && pwd)"
[[ $EUID -eq 0 ]] || { echo "install-pi.sh: run as root (sudo)" >&2; exit 1; }
[[ -e "$SOURCE" ]] || { echo "install-pi.sh: no such source: $SOURCE" >&2; exit 1; }

. /etc/os-release
if [[ "${VERSION_CODENAME:-}" != "bookworm" ]]; then
  echo "install-pi.sh: warning: tested on Debian 12 bookworm, this is ${PRETTY_NAME:-unknown}" >&2
fi
if [[ "$(dpkg --print-architecture)" != "arm64" ]]; then
  echo "install-pi.sh: warning: tested on arm64, this is $(dpkg --print-architecture)" >&2
fi

echo "== Debian packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
  python3 python3-venv python3-dev build-essential portaudio19-dev libsndfile1 alsa-utils \
  python3-gpiozero python3-lgpio

echo "== service user '$SERVICE_USER'"
if ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/pacelight --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER"
fi
for g in audio dialout gpio; do
  if getent group "$g" >/dev/null; then usermod -aG "$g" "$SERVICE_USER"; fi
done

echo "== Python environment in $PREFIX/venv"
mkdir -p "$PREFIX/releases"
# System site packages: gpiozero/lgpio come from Debian (they need the Pi's GPIO libraries).
[[ -x "$PREFIX/venv/bin/python" ]] || python3 -m venv --system-site-packages "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install -q --upgrade pip wheel
if [[ -f "$SOURCE" && "$SOURCE" == *.whl ]]; then
  cp -f "$SOURCE" "$PREFIX/releases/"
  "$PREFIX/venv/bin/pip" install -q "$SOURCE[audio]"
else
  "$PREFIX/venv/bin/pip" install -q "$SOURCE[audio]"
  if [[ -d "$SOURCE/docs" ]]; then mkdir -p "$PREFIX/docs" && cp -f "$SOURCE"/docs/*.md "$PREFIX/docs/"; fi
fi
"$PREFIX/venv/bin/pacelight" --version

echo "== /etc/pacelight and /var/lib/pacelight"
install -d -m 0750 -o root -g "$SERVICE_USER" /etc/pacelight
if [[ ! -f /etc/pacelight/config.toml ]]; then
  sed "s/^id = \"\"/id = \"$(hostname -s)\"/" "$HERE/config.toml" > /etc/pacelight/config.toml
  chown root:"$SERVICE_USER" /etc/pacelight/config.toml
  chmod 0640 /etc/pacelight/config.toml
fi
install -d -m 0750 -o "$SERVICE_USER" -g "$SERVICE_USER" /var/lib/pacelight

echo "== systemd unit"
sed "s#/opt/pacelight#$PREFIX#g" "$HERE/pacelight-edge.service" > /etc/systemd/system/pacelight-edge.service
systemctl daemon-reload
systemctl enable pacelight-edge.service
if [[ $START -eq 1 ]]; then
  systemctl restart pacelight-edge.service
  sleep 3
  systemctl --no-pager --lines=5 status pacelight-edge.service || true
fi
echo "installed: $PREFIX/venv/bin/pacelight, /etc/pacelight/config.toml, pacelight-edge.service"
echo "status file: /run/pacelight/status.json; logs: journalctl -u pacelight-edge.service"
