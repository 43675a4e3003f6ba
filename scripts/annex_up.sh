#!/bin/bash
# Make git-annex available for neuralset's DataLad / git-annex tests (Debian package git-annex).
# DataLad itself is a Python package (the `dev` extra of pyproject.toml), installed with the venv.
#
# Usage (as root, or with git-annex already installed): bash scripts/annex_up.sh
# Idempotent: prints the version and exits 0 when git-annex is already on PATH.
# Exit codes: 0 ready; 1 could not install (the message says why).
#
# Measured on Debian 12 (bookworm, git-annex 10.20230126), 2 cores, as root:
#   apt lists present, package not installed: ~25 s (download ~ 30 MB + install)
#   already installed: 0.02 s
set -euo pipefail

log() { echo "[annex_up +${SECONDS}s] $*"; }
die() { echo "[annex_up] ERROR: $*" >&2; exit 1; }

if command -v git-annex >/dev/null 2>&1; then
  log "git-annex already installed: $(git-annex version --raw 2>/dev/null || echo '?')"
  exit 0
fi
command -v apt-get >/dev/null || die "git-annex is not installed and apt-get is unavailable"
[ "$(id -u)" = 0 ] || die "git-annex is not installed and installing it needs root (apt-get install git-annex)"
export DEBIAN_FRONTEND=noninteractive
LOG=/tmp/neuralset-annex-apt.log
apt_install() { apt-get install -y -qq --no-install-recommends git-annex >"$LOG" 2>&1; }
log "installing git-annex"
if ! { [ -n "$(ls /var/lib/apt/lists/ 2>/dev/null | grep -v -e lock -e partial -e auxfiles)" ] && apt_install; }; then
  log "apt-get update"
  apt-get update -qq >"$LOG" 2>&1 || { tail "$LOG" >&2; die "apt-get update failed"; }
  apt_install || { tail "$LOG" >&2; die "apt-get install git-annex failed"; }
fi
command -v git-annex >/dev/null || die "git-annex still not on PATH after apt-get install"
log "git-annex ready: $(git-annex version --raw)"
