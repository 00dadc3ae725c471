#!/usr/bin/env bash
# A single-node SLURM on localhost for the test suite (Debian's slurm-wlm, as root, no
# systemd): munged, a private MariaDB + slurmdbd (accounting, so `sacct` works), slurmctld
# and `slurmd -N localhost`.
#
#   tests/slurm/cluster.sh up       install if needed, start, wait until the node is idle
#   tests/slurm/cluster.sh down     stop the daemons this script started (by their pid files)
#   tests/slurm/cluster.sh status   exit 0 if the node answers and is idle/mixed/allocated
#   tests/slurm/cluster.sh env      print `export SLURM_CONF=...` for clients
#
# Everything lives under $NPC_SLURM_DIR (default /tmp/npc-slurm); while the cluster is up,
# /etc/slurm/slurm.conf is a link to its config (the SLURM executor plugin strips SLURM_CONF
# from the job's environment, so the nested `srun` must find the config there). `down`
# removes the link: without /etc/slurm/slurm.conf, `scontrol` fails at once instead of
# waiting 10 s for an absent slurmctld, which every `snakemake` call would otherwise pay.
# An /etc/slurm/slurm.conf that is not this script's link (a real cluster) is never touched.
# `up` and `down` are idempotent. Anything that does not come up stops `up` with the tails
# of the daemons' logs.
set -euo pipefail

STATE=${NPC_SLURM_DIR:-/tmp/npc-slurm}
CLUSTER=${NPC_SLURM_CLUSTER:-npc}
DB_PORT=${NPC_SLURM_DB_PORT:-16033}
CONF_DIR=$STATE/etc
LOG_DIR=$STATE/log
RUN_DIR=$STATE/run
export SLURM_CONF=$CONF_DIR/slurm.conf
ETC_CONF=/etc/slurm/slurm.conf
PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)
DB_SOCKET=$RUN_DIR/mariadb.sock

say() { echo "slurm-cluster: $*" >&2; }

tails() {
  local f
  for f in "$LOG_DIR"/*.log; do
    [ -e "$f" ] || continue
    echo "----- tail of $f" >&2
    tail -n 25 "$f" >&2 || true
  done
}

die() {
  say "ERROR: $*"
  tails
  exit 1
}

# Wait up to $1 seconds for the command "${@:2}" to succeed.
wait_for() {
  local limit=$1 t=0
  shift
  until "$@" >/dev/null 2>&1; do
    t=$((t + 1))
    [ "$t" -le "$((limit * 4))" ] || return 1
    sleep 0.25
  done
}

# pid_alive FILE: the pid in FILE runs the daemon the file is named after (not a reused pid).
pid_alive() {
  [ -s "$1" ] || return 1
  local pid name
  pid=$(cat "$1")
  name=$(basename "$1" .pid)
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]
}

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "packages missing (${missing[*]}) and no apt-get"
  say "installing ${missing[*]}"
  # Debian's maintainer scripts would start the services: a policy-rc.d that exits 101
  # forbids it during the install (an existing one is put back afterwards).
  local saved=""
  if [ -e /usr/sbin/policy-rc.d ]; then
    saved=$(mktemp)
    cp -p /usr/sbin/policy-rc.d "$saved"
  fi
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  local rc=0
  {
    apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}"
  } >"$STATE/apt.log" 2>&1 || rc=$?
  if [ -n "$saved" ]; then mv "$saved" /usr/sbin/policy-rc.d; else rm -f /usr/sbin/policy-rc.d; fi
  [ "$rc" -eq 0 ] || {
    tail -n 30 "$STATE/apt.log" >&2
    die "apt-get install failed"
  }
}

write_configs() {
  mkdir -p "$CONF_DIR" "$LOG_DIR" "$RUN_DIR" "$STATE/ctld" "$STATE/slurmd"
  local cpus mem
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
  cat >"$CONF_DIR/slurm.conf" <<EOF
# Written by tests/slurm/cluster.sh: a single-node test cluster.
ClusterName=$CLUSTER
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
MinJobAge=300
ReturnToService=2
MpiDefault=none
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=main Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
  cat >"$CONF_DIR/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=$RUN_DIR/slurmdbd.pid
LogFile=$LOG_DIR/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=npc
StorageLoc=slurm_acct_db
EOF
  chmod 600 "$CONF_DIR/slurmdbd.conf"
  link_conf
}

link_conf() {
  if [ -e "$ETC_CONF" ] || [ -L "$ETC_CONF" ]; then
    [ "$(readlink "$ETC_CONF")" = "$SLURM_CONF" ] ||
      die "$ETC_CONF exists and is not this test cluster's: not touching a real SLURM"
  else
    mkdir -p /etc/slurm
    ln -s "$SLURM_CONF" "$ETC_CONF"
  fi
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
  mkdir -p /run/munge
  chown munge:munge /run/munge
  [ -s /etc/munge/munge.key ] || die "/etc/munge/munge.key missing (reinstall munge)"
  touch "$LOG_DIR/munged.log"
  chown munge:munge "$LOG_DIR/munged.log"
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid \
    --log-file="$LOG_DIR/munged.log" || die "munged did not start"
  touch "$RUN_DIR/munged.ours"
  wait_for 10 sh -c 'munge -n | unmunge' || die "munge does not answer"
}

db() { mariadb --socket="$DB_SOCKET" -u root "$@"; }

start_mariadb() {
  if pid_alive "$RUN_DIR/mariadbd.pid" && db -e "select 1" >/dev/null 2>&1; then return 0; fi
  if [ ! -d "$STATE/mysql/mysql" ]; then
    mariadb-install-db --no-defaults --user=root --datadir="$STATE/mysql" \
      --auth-root-authentication-method=socket >"$LOG_DIR/mariadb-install.log" 2>&1 ||
      die "mariadb-install-db failed"
  fi
  # Private instance: own data dir, socket and port on 127.0.0.1 (no clash with a system one).
  nohup /usr/sbin/mariadbd --no-defaults --user=root --datadir="$STATE/mysql" \
    --socket="$DB_SOCKET" --pid-file="$RUN_DIR/mariadbd.pid" --bind-address=127.0.0.1 \
    --port="$DB_PORT" --log-error="$LOG_DIR/mariadb.log" --innodb-buffer-pool-size=64M \
    </dev/null >/dev/null 2>&1 &
  wait_for 60 db -e "select 1" || die "mariadbd does not answer on $DB_SOCKET"
  db -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'npc';
         CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'npc';
         GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
         GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';" ||
    die "could not create the slurm database user"
}

start_slurmdbd() {
  if ! pid_alive "$RUN_DIR/slurmdbd.pid"; then
    /usr/sbin/slurmdbd || die "slurmdbd did not start"
  fi
  wait_for 60 sacctmgr -n list cluster || die "slurmdbd does not answer (sacctmgr)"
  if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null || die "sacctmgr add cluster failed"
  fi
}

start_slurm() {
  if ! pid_alive "$RUN_DIR/slurmctld.pid"; then
    /usr/sbin/slurmctld || die "slurmctld did not start"
  fi
  wait_for 60 scontrol ping || die "slurmctld does not answer (scontrol ping)"
  if ! pid_alive "$RUN_DIR/slurmd.pid"; then
    /usr/sbin/slurmd -N localhost || die "slurmd did not start"
  fi
}

node_ready() {
  local state
  state=$(sinfo -h -N -n localhost -o %t 2>/dev/null) || return 1
  case "$state" in idle | mix | alloc) return 0 ;; *) return 1 ;; esac
}

up() {
  [ "$(id -u)" -eq 0 ] || die "run as root (starts munged, mariadbd and the SLURM daemons)"
  mkdir -p "$STATE" "$LOG_DIR" "$RUN_DIR"
  if pid_alive "$RUN_DIR/slurmctld.pid" && pid_alive "$RUN_DIR/slurmd.pid" && node_ready; then
    link_conf
    say "already up ($SLURM_CONF)"
    return 0
  fi
  local start=$SECONDS
  install_packages
  write_configs
  start_munge
  start_mariadb
  start_slurmdbd
  start_slurm
  if ! wait_for 60 node_ready; then
    sinfo -N -l >&2 || true
    die "node localhost is not idle after 60 s"
  fi
  say "up in $((SECONDS - start)) s: $(sinfo -h -N -o '%N %t %c CPUs %m MB')"
}

stop_pidfile() {
  local name=$1 file=$2
  pid_alive "$file" || {
    rm -f "$file"
    return 0
  }
  local pid
  pid=$(cat "$file")
  kill "$pid" 2>/dev/null || true
  local t=0
  while kill -0 "$pid" 2>/dev/null; do
    t=$((t + 1))
    if [ "$t" -gt 60 ]; then
      say "$name ($pid) still running after 15 s: SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.25
  done
  rm -f "$file"
}

down() {
  local start=$SECONDS
  if pid_alive "$RUN_DIR/slurmctld.pid"; then
    scancel --full --quiet -u root 2>/dev/null || true
  fi
  mkdir -p "$RUN_DIR"
  stop_pidfile slurmd "$RUN_DIR/slurmd.pid"
  stop_pidfile slurmctld "$RUN_DIR/slurmctld.pid"
  stop_pidfile slurmdbd "$RUN_DIR/slurmdbd.pid"
  stop_pidfile mariadbd "$RUN_DIR/mariadbd.pid"
  if [ -e "$RUN_DIR/munged.ours" ]; then
    stop_pidfile munged /run/munge/munged.pid
    rm -f "$RUN_DIR/munged.ours"
  fi
  [ "$(readlink "$ETC_CONF" 2>/dev/null)" = "$SLURM_CONF" ] && rm -f "$ETC_CONF"
  say "down in $((SECONDS - start)) s"
}

case "${1:-}" in
up) up ;;
down) down ;;
status) pid_alive "$RUN_DIR/slurmctld.pid" && pid_alive "$RUN_DIR/slurmd.pid" && node_ready ;;
env) echo "export SLURM_CONF=$SLURM_CONF" ;;
*)
  echo "usage: $0 up|down|status|env" >&2
  exit 2
  ;;
esac
