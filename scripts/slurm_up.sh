#!/bin/bash
# Start a throw-away single-node SLURM cluster on 127.0.0.1 for neuralset's test suite:
# munge + slurmctld + slurmd + slurmdbd/MariaDB accounting (so `sacct`, hence submitit,
# sees CANCELLED / TIMEOUT jobs). No systemd, no cgroups; every daemon runs as root and
# keeps its state/logs/pidfiles under $SLURM_DIR (default /tmp/neuralset-slurm).
#
# Usage (as root): bash scripts/slurm_up.sh   # then: export SLURM_CONF=$SLURM_DIR/slurm.conf
#                 bash scripts/slurm_down.sh  # stops it again (--purge: also delete $SLURM_DIR)
# Idempotent: if a cluster configured from $SLURM_DIR already answers `sinfo`, it is reused;
# daemons already running (by pidfile) are not started twice.
# Env overrides: SLURM_DIR, SLURM_NODE_CPUS (default max(4*nproc,8)), SLURM_DEF_MEM_PER_CPU
# (MB, default 512), SLURMCTLD_PORT/SLURMD_PORT/SLURMDBD_PORT (6817/6818/6819), SLURM_MYSQL_PORT (3307).
#
# Measured on Debian 12 (bookworm, slurm-wlm 22.05.8), 2 cores / 24 GB, as root:
#   fresh machine, empty apt lists: apt-get update + download/install (~22 MB, 29 pkgs) + up: 40 s
#   packages not installed, apt lists present (no update needed):                         34 s
#   packages installed, new $SLURM_DIR (MariaDB datadir init 6 s, slurmdbd schema 4 s):   12.6 s
#   packages installed, existing $SLURM_DIR, daemons stopped:                              2.6 s
#   cluster already up (reused):                                                           0.04 s
#   scripts/slurm_down.sh:                                                                 ~7 s
# SLURM facts that matter for tests: time limits are whole minutes (--time=0:10 becomes 1 min) and
# slurmctld checks them every 30 s, so a 1-min job is killed 60-90 s after it starts.
set -euo pipefail

S=${SLURM_DIR:-/tmp/neuralset-slurm}
CTLD_PORT=${SLURMCTLD_PORT:-6817}
SLURMD_PORT=${SLURMD_PORT:-6818}
DBD_PORT=${SLURMDBD_PORT:-6819}
MYSQL_PORT=${SLURM_MYSQL_PORT:-3307}
PARTITION=debug
CLUSTER=neuralset
export SLURM_CONF=$S/slurm.conf

log() { echo "[slurm_up +${SECONDS}s] $*"; }
die() { echo "[slurm_up] ERROR: $*" >&2; for f in "$S"/log/*; do [ -s "$f" ] && { echo "--- tail $f" >&2; tail -n 15 "$f" >&2; }; done; exit 1; }
# wait_for <tries of 0.5 s> <command...>
wait_for() { local n=$1; shift; for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done; return 1; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }  # $1=pidfile
node_ready() { sinfo -h -p $PARTITION -o %T 2>/dev/null | grep -Eq '^(idle|mixed|allocated|completing)'; }

[ "$(id -u)" = 0 ] || die "must run as root (daemons, munge key, apt-get)"

# --- reuse a running cluster -------------------------------------------------------------
# (pidfiles first: sinfo retries for ~10 s when no slurmctld listens)
if [ -f "$SLURM_CONF" ] && alive "$S/slurmdbd.pid" && alive "$S/slurmctld.pid" \
   && alive "$S/slurmd.pid" && command -v sinfo >/dev/null && node_ready; then
  log "cluster already up, reusing it"
  sinfo
  echo "export SLURM_CONF=$SLURM_CONF"
  exit 0
fi

# --- packages ----------------------------------------------------------------------------
PKGS="slurm-wlm munge slurmdbd mariadb-server"
if ! dpkg -s $PKGS >/dev/null 2>&1; then
  command -v apt-get >/dev/null || die "packages missing and apt-get unavailable: $PKGS"
  export DEBIAN_FRONTEND=noninteractive
  # keep the packages' init scripts from starting system-wide daemons (munge, mariadb, slurm*)
  POLICY=/usr/sbin/policy-rc.d; OWN_POLICY=0
  if [ ! -e $POLICY ]; then printf '#!/bin/sh\nexit 101\n' >$POLICY; chmod +x $POLICY; OWN_POLICY=1; fi
  apt_install() { apt-get install -y -qq --no-install-recommends $PKGS >/tmp/neuralset-slurm-apt.log 2>&1; }
  log "installing $PKGS"
  if ! { [ -n "$(ls /var/lib/apt/lists/ 2>/dev/null | grep -v -e lock -e partial -e auxfiles)" ] && apt_install; }; then
    log "apt-get update"
    apt-get update -qq >/tmp/neuralset-slurm-apt.log 2>&1 || { [ $OWN_POLICY = 1 ] && rm -f $POLICY; tail /tmp/neuralset-slurm-apt.log; die "apt-get update failed"; }
    apt_install || { [ $OWN_POLICY = 1 ] && rm -f $POLICY; tail /tmp/neuralset-slurm-apt.log; die "apt-get install failed"; }
  fi
  [ $OWN_POLICY = 1 ] && rm -f $POLICY
fi

mkdir -p "$S/state" "$S/spool" "$S/log"
HOST=$(hostname -s)

# --- munge -------------------------------------------------------------------------------
if [ ! -f /etc/munge/munge.key ]; then
  mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key; chmod 600 /etc/munge/munge.key
fi
mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge
if ! alive /run/munge/munged.pid; then
  log "starting munged"
  runuser -u munge -- /usr/sbin/munged --force
fi
wait_for 20 sh -c 'munge -n | unmunge' || die "munge does not work"

# --- slurm.conf / slurmdbd.conf ------------------------------------------------------------
NPROC=$(nproc)
CPUS=${SLURM_NODE_CPUS:-$(( NPROC * 4 > 8 ? NPROC * 4 : 8 ))}
MEM=$(( $(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo) * 85 / 100 ))
cat >"$S/slurm.conf" <<CONF
# generated by neuralset scripts/slurm_up.sh
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
# cores and memory are the consumables; CPUs may exceed the real core count (config_overrides)
# so that several 1-CPU test jobs run side by side on a 2-core machine
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
DefMemPerCPU=${SLURM_DEF_MEM_PER_CPU:-512}
ReturnToService=2
InactiveLimit=0
# short grace between SIGTERM and SIGKILL on scancel / time limit, no extra time after the limit
KillWait=2
OverTimeLimit=0
# finished jobs stay visible to squeue/scontrol for 5 min, and forever to sacct (slurmdbd)
MinJobAge=300
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
JobAcctGatherType=jobacct_gather/linux
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF

cat >"$S/slurmdbd.conf" <<CONF
# generated by neuralset scripts/slurm_up.sh
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
LogFile=$S/log/slurmdbd.log
PidFile=$S/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$MYSQL_PORT
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=slurm_acct_db
CONF
chmod 600 "$S/slurmdbd.conf"   # slurmdbd refuses a world-readable config

# --- MariaDB (private datadir, TCP 127.0.0.1:$MYSQL_PORT) -----------------------------------
if [ ! -d "$S/mysql/mysql" ]; then
  log "initialising MariaDB datadir"
  mariadb-install-db --user=root --datadir="$S/mysql" --auth-root-authentication-method=normal \
      --skip-test-db >"$S/log/mysql_init.log" 2>&1 || die "mariadb-install-db failed"
fi
SQL="mariadb --socket=$S/mysqld.sock -uroot"
if ! alive "$S/mysqld.pid"; then
  log "starting mariadbd"
  setsid /usr/sbin/mariadbd --user=root --datadir="$S/mysql" --socket="$S/mysqld.sock" \
      --port="$MYSQL_PORT" --bind-address=127.0.0.1 --pid-file="$S/mysqld.pid" \
      --log-error="$S/log/mysqld.err" </dev/null >/dev/null 2>&1 &
fi
wait_for 120 $SQL -e 'select 1' || die "MariaDB did not come up"
$SQL -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmpw';
         GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;"

# --- slurmdbd, then slurmctld and slurmd ----------------------------------------------------
if ! alive "$S/slurmdbd.pid"; then log "starting slurmdbd"; /usr/sbin/slurmdbd; fi
wait_for 60 sacctmgr -n list cluster || die "slurmdbd does not answer"
sacctmgr -n -P list cluster format=cluster | grep -qx $CLUSTER || sacctmgr -i add cluster $CLUSTER >/dev/null
if ! alive "$S/slurmctld.pid"; then log "starting slurmctld"; /usr/sbin/slurmctld -f "$SLURM_CONF"; fi
if ! alive "$S/slurmd.pid"; then log "starting slurmd"; /usr/sbin/slurmd -f "$SLURM_CONF" -N "$HOST"; fi
node_bad() { sinfo -h -n "$HOST" -o %T 2>/dev/null | grep -Eq '^(drain|down|fail|inval)'; }
for _ in $(seq 60); do
  node_ready && break
  # a node left DOWN/DRAINED by an earlier run (e.g. "Kill task failed"): bring it back
  node_bad && { log "resuming node $HOST ($(sinfo -h -n "$HOST" -o '%T %E'))"; scontrol update NodeName="$HOST" State=RESUME || true; }
  sleep 0.5
done
node_ready || { sinfo -N -l >&2 || true; die "node $HOST did not become idle"; }
sinfo
echo "export SLURM_CONF=$SLURM_CONF"
