#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for tests/test_slurm.py.
#
#   .ci/slurm-cluster.sh [start]   install (Debian packages), configure and start it; idempotent
#   .ci/slurm-cluster.sh stop      stop the daemons this script started (by their PID files)
#   .ci/slurm-cluster.sh status    exit 0 when the controller answers and the node takes jobs
#
# Needs root on Debian 12 (apt-get, no systemd needed). The node offers every CPU, 85 % of the
# memory and one GPU: a stand-in GRES device (File=/dev/null), so that `--gpus=1` jobs schedule
# on a machine without a GPU. Accounting runs through slurmdbd + MariaDB, so `sacct` keeps a
# record of every job (requeues, allocated GPUs) for the tests to check, as on a real cluster.
#
# Environment:
#   SLURM_STATE_DIR    state, spool and logs (default /var/lib/lambdabeta-slurm)
#   SLURM_ACCOUNTING   dbd (default) or none (no slurmdbd/MariaDB: quicker to install; `sacct`
#                      then fails and the tests read job states from squeue)
#   SLURM_START_TIMEOUT  seconds to wait for each daemon (default 60)
#
# Exits non-zero, saying why, when SLURM cannot be installed or started.
set -euo pipefail

ACTION=${1:-start}
STATE=${SLURM_STATE_DIR:-/var/lib/lambdabeta-slurm}
ACCOUNTING=${SLURM_ACCOUNTING:-dbd}
TIMEOUT=${SLURM_START_TIMEOUT:-60}
CONF_DIR=/etc/slurm
DB_NAME=slurm_acct_db
DB_USER=slurm
DB_PASS=slurm-local-test

say() { echo "slurm-cluster: $*"; }
fail() {
  echo "slurm-cluster: SLURM could not start: $*" >&2
  for log in "$STATE"/log/*.log "$STATE"/mysql/mariadb.err; do
    [ -s "$log" ] || continue
    echo "---- last lines of $log" >&2
    tail -n 15 "$log" >&2
  done
  exit 1
}

# wait_for DESCRIPTION COMMAND...: poll COMMAND until it succeeds, at most $TIMEOUT seconds
wait_for() {
  local what=$1
  shift
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$what did not come up within ${TIMEOUT} s"
    sleep 0.2
  done
}

# the node is up and takes jobs (idle, or busy with some)
node_ready() {
  local states
  states=$(sinfo --noheader --Node --format=%T 2>/dev/null) || return 1
  [ -n "$states" ] && ! grep -qvxE 'idle|mixed|allocated|completing' <<<"$states"
}
controller_up() { scontrol ping 2>/dev/null | grep -q UP; }
munge_up() { munge --no-input 2>/dev/null | unmunge >/dev/null 2>&1; }
dbd_port_open() { (echo >/dev/tcp/127.0.0.1/6819) 2>/dev/null; }

stop_pidfile() {
  local file=$1 pid
  [ -s "$file" ] || return 0
  pid=$(cat "$file")
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  kill -9 "$pid" 2>/dev/null || true
}

stop_cluster() {
  # reverse start order; only daemons started from these PID files
  stop_pidfile "$STATE/slurmd.pid"
  stop_pidfile "$STATE/slurmctld.pid"
  stop_pidfile "$STATE/slurmdbd.pid"
  stop_pidfile "$STATE/mysql/mysqld.pid"
  stop_pidfile /run/munge/munged.pid
}

install_packages() {
  local packages=(slurm-wlm munge)
  [ "$ACCOUNTING" = dbd ] && packages+=(slurmdbd mariadb-server)
  local missing=()
  for package in "${packages[@]}"; do
    dpkg-query --show --showformat='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' ||
      missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || fail "apt-get not found (this script needs Debian/Ubuntu)"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || fail "apt-get update failed"
  # the postinst scripts do not start daemons here (no systemd; policy-rc.d may deny it too)
  apt-get install -y -qq "${missing[@]}" >/dev/null || fail "apt-get install ${missing[*]} failed"
}

write_config() {
  local host hardware
  host=$(hostname -s)
  # what slurmd detects, so the node never registers with less than it is configured with
  hardware=$(slurmd -C | head -n 1 | sed -e 's/^NodeName=[^ ]* //' -e 's/RealMemory=[0-9]*//')
  local memory_mb=$(($(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) * 85 / 100))
  mkdir -p "$CONF_DIR" "$STATE/state" "$STATE/spool" "$STATE/log"

  local accounting_lines="AccountingStorageType=accounting_storage/none"
  if [ "$ACCOUNTING" = dbd ]; then
    accounting_lines="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu
AccountingStoreFlags=job_comment"
  fi

  cat >"$CONF_DIR/slurm.conf" <<CONF
# Single-node test cluster written by .ci/slurm-cluster.sh
ClusterName=local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
$accounting_lines
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/log/jobcomp.txt
# finished jobs stay visible to squeue this long (the plugin's squeue status path needs it)
MinJobAge=300
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 $hardware RealMemory=$memory_mb Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  # a GRES device file must exist; /dev/null stands in for the GPU nobody has here
  echo "NodeName=$host Name=gpu File=/dev/null" >"$CONF_DIR/gres.conf"

  if [ "$ACCOUNTING" = dbd ]; then
    cat >"$CONF_DIR/slurmdbd.conf" <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
DebugLevel=info
LogFile=$STATE/log/slurmdbd.log
PidFile=$STATE/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=$DB_USER
StoragePass=$DB_PASS
StorageLoc=$DB_NAME
CONF
    chmod 600 "$CONF_DIR/slurmdbd.conf" # slurmdbd refuses a readable password file
  fi
}

start_daemons() {
  mkdir -p /run/munge && chown munge:munge /run/munge
  [ -s /etc/munge/munge.key ] || /usr/sbin/mungekey --create
  munge_up || runuser -u munge -- /usr/sbin/munged
  wait_for munged munge_up

  if [ "$ACCOUNTING" = dbd ]; then
    # mariadbd runs as mysql: its PID file and log live in a folder that user owns
    mkdir -p /run/mysqld "$STATE/mysql" && chown mysql:mysql /run/mysqld "$STATE/mysql"
    if ! mysqladmin ping >/dev/null 2>&1; then
      setsid /usr/sbin/mariadbd --user=mysql --pid-file="$STATE/mysql/mysqld.pid" \
        --log-error="$STATE/mysql/mariadb.err" </dev/null >/dev/null 2>&1 &
    fi
    wait_for MariaDB mysqladmin ping
    mysql -e "CREATE DATABASE IF NOT EXISTS $DB_NAME;
      CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
      GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'localhost'; FLUSH PRIVILEGES;" ||
      fail "could not create the accounting database"
    dbd_port_open || /usr/sbin/slurmdbd
    wait_for slurmdbd dbd_port_open
  fi

  /usr/sbin/slurmctld
  wait_for slurmctld controller_up
  /usr/sbin/slurmd
  wait_for "the node (slurmd)" node_ready
}

start_cluster() {
  [ "$(id -u)" -eq 0 ] || fail "this script must run as root"
  case $ACCOUNTING in dbd | none) ;; *) fail "SLURM_ACCOUNTING must be dbd or none, got '$ACCOUNTING'" ;; esac
  # scontrol answers at once when no controller runs; sinfo would retry for seconds
  if command -v scontrol >/dev/null && controller_up && node_ready; then
    say "already running: $(sinfo --noheader --format='%P %D node(s) %T %G')"
    return 0
  fi
  install_packages
  stop_cluster # leftovers of an earlier start that did not come up
  write_config
  start_daemons
  say "up: $(sinfo --noheader --format='partition %P, %D node(s) %T, gres %G')"
  say "accounting: $ACCOUNTING; state and logs in $STATE"
}

case $ACTION in
start) start_cluster ;;
stop) stop_cluster && say "stopped" ;;
status) command -v scontrol >/dev/null && controller_up && node_ready ;;
*)
  echo "usage: $0 [start|stop|status]" >&2
  exit 2
  ;;
esac
