#!/bin/bash
# Stop the single-node SLURM cluster started by scripts/slurm_up.sh (by pidfile, reverse order).
# Usage: bash scripts/slurm_down.sh [--purge]   (--purge also deletes $SLURM_DIR: state, DB, logs)
# Idempotent: daemons that are not running are skipped. munged is stopped too unless
# SLURM_KEEP_MUNGE=1 (it is shared system-wide through /run/munge).
set -uo pipefail
S=${SLURM_DIR:-/tmp/neuralset-slurm}

stop() { # $1=name $2=pidfile
  local p
  [ -f "$2" ] || { echo "[slurm_down] $1: not running (no pidfile)"; return 0; }
  p=$(cat "$2")
  if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
    kill "$p"
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$p" 2>/dev/null; then echo "[slurm_down] $1 ($p) still alive, SIGKILL"; kill -9 "$p"; fi
    echo "[slurm_down] stopped $1 ($p)"
  else
    echo "[slurm_down] $1 ($p): not running"
  fi
  rm -f "$2"
}

# cancel what is left and let it finish: a slurmstepd whose slurmd is gone is orphaned and the
# node comes back DRAINED ("Kill task failed") on the next start
ctld=$(cat "$S/slurmctld.pid" 2>/dev/null || true)
if [ -n "$ctld" ] && kill -0 "$ctld" 2>/dev/null && [ -f "$S/slurm.conf" ]; then
  export SLURM_CONF=$S/slurm.conf
  if [ -n "$(timeout 10 squeue -h -o %i 2>/dev/null)" ]; then
    echo "[slurm_down] cancelling remaining jobs"
    timeout 10 scancel --quiet --user=root 2>/dev/null || true
    for _ in $(seq 60); do [ -z "$(timeout 10 squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.5; done
  fi
fi
# each daemon takes ~2-4 s to exit: stop them in dependency order, independent ones in parallel
stop slurmd "$S/slurmd.pid" & stop slurmctld "$S/slurmctld.pid" & wait
stop slurmdbd "$S/slurmdbd.pid"
stop mariadbd "$S/mysqld.pid" &
[ "${SLURM_KEEP_MUNGE:-0}" = 1 ] || stop munged /run/munge/munged.pid &
wait
if [ "${1:-}" = "--purge" ]; then rm -rf "$S"; echo "[slurm_down] removed $S"; fi
exit 0
