#!/usr/bin/env bash
# Set up ctrlspeak from a fresh clone: system packages, a virtualenv in .venv, the package.
# Idempotent and quick when nothing changed. Used by scripts/demo.sh, scripts/test.sh, .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: audio I/O, speech synthesis for the demo and tests, the virtual
# desktop the end-to-end tests run on (Xvfb, PulseAudio, D-Bus, a notification server),
# and openssl for the download tests' HTTPS hub certificate.
APT_PACKAGES=(
  python3-venv gcc linux-libc-dev libsndfile1 libportaudio2 espeak-ng sox
  xvfb x11-utils xdotool xclip xsel imagemagick xterm
  pulseaudio pulseaudio-utils libasound2-plugins dbus libnotify-bin dunst trayer
  systemd libplist-utils openssl
  sway wtype wl-clipboard foot python3-gi gir1.2-gtk-3.0 grim
)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing system packages: ${missing[*]}" >&2
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    echo "setup: please install the equivalents of: ${missing[*]}" >&2
  fi
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
stamp=.venv/.ctrlspeak-installed
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip setuptools wheel
  # torch first, from the constraints file, so nothing can pull a CUDA build onto a CPU box
  .venv/bin/python -m pip install -q -c constraints.txt torch
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
  echo "$want" > "$stamp"
fi
