#!/usr/bin/env bash
# slurm-local.sh: a real one-node Slurm cluster on this machine, for tests and developers.
#
# Usage: bash scripts/slurm-local.sh start|stop|status
#
#   start   Installs Debian's slurm-wlm + munge when missing (apt-get; 'apt-get update' only when the
#           package lists do not know them or the install fails), creates the munge key when missing,
#           writes /etc/slurm/slurm.conf + gres.conf for this host, starts munged, slurmctld and slurmd
#           in the background (they outlive this script; no systemd needed), waits until the node is
#           idle and prints the cluster's state. Idempotent: with everything up and the config
#           unchanged it does nothing and exits 0 at once. Needs root.
#   stop    Stops the daemons that this script started (pids recorded under $GRPO_SLURM_ROOT/run);
#           daemons it found already running are left alone.
#   status  Exits 0 when a job can be submitted now (checked with 'sbatch --test-only'), otherwise
#           non-zero with the reason on stderr.
#
# The cluster: ClusterName=grpo-local (Debian 12: slurm-wlm 22.05.8), one node (this host's short
# name, CPUs and memory from 'slurmd -C', NodeAddr=127.0.0.1), one default partition 'debug', no
# cgroups (proctrack/linuxproc, task/none), SlurmUser root. GPUs: gpu:$GRPO_SLURM_GPUS (default 8) as a
# GRES backed by empty stand-in files (22.05 drops a GPU without File=), so 'sbatch --gres=gpu:8' is
# accepted and counted on a machine without GPUs (jobs see SLURM_GPUS_ON_NODE, not
# CUDA_VISIBLE_DEVICES). EnforcePartLimits=ALL: more nodes or GPUs than the node has is refused
# at submit instead of pending forever.
# There is no slurmdbd, so plain 'sacct' answers "Slurm accounting storage is disabled". A job's
# final state and exit code:
#   scontrol show job -o <id>   JobState=FAILED ... ExitCode=3:0, while slurmctld remembers the
#                               job (MinJobAge=3600 s after it ends; kept across slurmctld restarts)
#   sacct -c -j <id> --format=JobID,State,ExitCode -n -P   -> 2|FAILED|3:0, read from the
#                               job-completion log (JobCompType=jobcomp/filetxt), kept for good
# Jobs keep running when slurmctld or slurmd stop or restart (slurmstepd runs them); 'stop' leaves
# running jobs alone ('scancel' them first).
#
# Environment: GRPO_SLURM_ROOT (state, spool, logs, pids; default /var/lib/grpo-slurm),
# GRPO_SLURM_GPUS (count-only GPUs on the node; default 8), GRPO_SLURM_PARTITION (default debug),
# GRPO_SLURM_WAIT_S (how long start waits for the node; default 60).
set -euo pipefail

export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}"
ROOT=${GRPO_SLURM_ROOT:-/var/lib/grpo-slurm}
GPUS=${GRPO_SLURM_GPUS:-8}
PARTITION=${GRPO_SLURM_PARTITION:-debug}
WAIT_S=${GRPO_SLURM_WAIT_S:-60}
CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
GRES_CONF=$CONF_DIR/gres.conf
MARK="# managed by grpo-pipeline scripts/slurm-local.sh"
NODE=$(hostname -s)
RUN=$ROOT/run
LOG=$ROOT/log

say() { echo "[slurm-local] $*"; }
die() { echo "[slurm-local] error: $*" >&2; exit 1; }

installed() { command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && command -v sbatch >/dev/null; }

munge_ok() { command -v munge >/dev/null && munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }

ctld_up() { scontrol ping 2>/dev/null | grep -q 'is UP'; }

# The node's state as sinfo reports it (idle, mix, alloc, down*, drain, ...), or nothing.
node_state() { sinfo -h -n "$NODE" -o '%T' 2>/dev/null | head -n1; }

node_ready() { case "$(node_state)" in idle | mixed | allocated | completing) return 0 ;; *) return 1 ;; esac; }

# Is the pid recorded in $RUN/$1.pid a live process named $1?
ours_alive() {
  local f=$RUN/$1.pid pid
  [[ -f $f ]] || return 1
  pid=$(cat "$f")
  [[ -n $pid && -r /proc/$pid/comm && "$(cat "/proc/$pid/comm")" == "$1"* ]]
}

ADDED_POLICY=''
remove_added_policy() { if [[ -n $ADDED_POLICY ]]; then rm -f "$ADDED_POLICY"; ADDED_POLICY=''; fi; }

install_packages() {
  installed && return 0
  [[ $(id -u) == 0 ]] || die "slurm-wlm and munge are not installed and installing them needs root"
  export DEBIAN_FRONTEND=noninteractive
  local apt=(apt-get -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confold)
  # Keep the packages' maintainer scripts from starting the daemons themselves (invoke-rc.d asks
  # policy-rc.d): this script starts them with its own config. One that is already there is kept.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    trap remove_added_policy EXIT
    ADDED_POLICY=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$ADDED_POLICY" && chmod 755 "$ADDED_POLICY"
  fi
  say "installing slurm-wlm and munge (apt-get)"
  : >"$LOG/apt.log"
  local known
  known=$(apt-cache policy slurm-wlm 2>/dev/null || true)
  if [[ $known != *"Candidate: "[0-9]* ]]; then
    say "apt-get update (slurm-wlm unknown to the package lists)"
    apt-get -q update -o DPkg::Lock::Timeout=300 >"$LOG/apt.log" 2>&1 || true
  fi
  if ! "${apt[@]}" install slurm-wlm munge >>"$LOG/apt.log" 2>&1; then
    say "install failed; apt-get update and one more try"
    apt-get -q update -o DPkg::Lock::Timeout=300 >>"$LOG/apt.log" 2>&1 || true
    "${apt[@]}" install slurm-wlm munge >>"$LOG/apt.log" 2>&1 || true
  fi
  remove_added_policy
  if ! installed; then
    tail -n 20 "$LOG/apt.log" >&2 || true
    die "installing slurm-wlm and munge failed (log: $LOG/apt.log)"
  fi
}

render_slurm_conf() {
  # 'slurmd -C' prints this host's NodeName line (CPUs, sockets, cores, threads, RealMemory).
  local hw
  hw=$(slurmd -C 2>/dev/null | head -n1 | sed -E 's/^NodeName=[^ ]+ //; s/ *UpTime=.*//')
  [[ $hw == *CPUs=* ]] || die "'slurmd -C' did not describe this host: $(slurmd -C 2>&1 | head -n3)"
  cat <<EOF
$MARK
# A one-node cluster for tests and development. Rewritten by 'slurm-local.sh start'.
ClusterName=grpo-local
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
EnforcePartLimits=ALL
MinJobAge=3600
KillWait=5
SlurmctldTimeout=30
SlurmdTimeout=60
StateSaveLocation=$ROOT/state
SlurmdSpoolDir=$ROOT/spool/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 $hw Gres=gpu:$GPUS State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

render_gres_conf() {
  cat <<EOF
$MARK
# Stand-in GPUs so that jobs may ask for --gres=gpu:N on a GPU-less host. Slurm 22.05's gres/gpu
# drops a GPU line without File= ("Removing file-less GPU gpu:(null) from final GRES list"), so
# each GPU names an empty regular file; nothing opens them (no cgroup device constraint here).
AutoDetect=off
NodeName=$NODE Name=gpu File=$ROOT/fake-gpu/gpu[0-$((GPUS - 1))] Count=$GPUS
EOF
}

make_fake_gpus() {
  mkdir -p "$ROOT/fake-gpu"
  local i
  for ((i = 0; i < GPUS; i++)); do [[ -e $ROOT/fake-gpu/gpu$i ]] || : >"$ROOT/fake-gpu/gpu$i"; done
}

# Writes $2 to $1 when it differs; refuses to replace a file that this script did not write.
# Returns 0 when the file changed.
write_if_changed() {
  local path=$1 body=$2
  if [[ -f $path ]]; then
    [[ "$(cat "$path")" == "$body" ]] && return 1
    head -n1 "$path" | grep -qF "$MARK" || die "$path exists and was not written by this script; move it away first"
  fi
  mkdir -p "$(dirname "$path")"
  printf '%s\n' "$body" >"$path.tmp.$$" && mv "$path.tmp.$$" "$path"
  return 0
}

start_munge() {
  munge_ok && return 0
  id munge >/dev/null 2>&1 || die "no 'munge' user: is the munge package installed?"
  install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
  install -d -o munge -g munge -m 0711 /var/lib/munge
  install -d -o munge -g munge -m 0755 /run/munge
  if [[ ! -s /etc/munge/munge.key ]]; then
    say "creating /etc/munge/munge.key"
    runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
  fi
  chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
  say "starting munged"
  setsid runuser -u munge -- munged --pid-file=/run/munge/munged.pid </dev/null >>"$LOG/munged.out" 2>&1 9>&- ||
    die "munged did not start: $(tail -n 5 "$LOG/munged.out" /var/log/munge/munged.log 2>/dev/null)"
  for _ in $(seq 50); do munge_ok && break; sleep 0.1; done
  munge_ok || die "munged started but 'munge -n | unmunge' fails (log: /var/log/munge/munged.log)"
  cp /run/munge/munged.pid "$RUN/munged.pid"
}

start_daemon() { # $1: slurmctld or slurmd
  ours_alive "$1" && return 0
  say "starting $1"
  local args=()
  [[ $1 == slurmd ]] && args=(-N "$NODE")
  # Both daemonize themselves (double fork, stdio to /dev/null) and write their pid files to $RUN.
  setsid "$1" "${args[@]}" </dev/null >>"$LOG/$1.out" 2>&1 9>&- ||
    die "$1 did not start: $(tail -n 5 "$LOG/$1.out" "$LOG/$1.log" 2>/dev/null)"
  for _ in $(seq 50); do ours_alive "$1" && return 0; sleep 0.1; done
  die "$1 exited at start; last lines of $LOG/$1.log:
$(tail -n 15 "$LOG/$1.log" 2>/dev/null)"
}

stop_daemon() { # $1: name; only a pid that this script recorded
  local f=$RUN/$1.pid pid
  if ! ours_alive "$1"; then rm -f "$f"; return 0; fi
  pid=$(cat "$f")
  say "stopping $1 (pid $pid)"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do [[ -d /proc/$pid ]] || break; sleep 0.1; done
  if [[ -d /proc/$pid ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$f"
}

can_submit() { # prints why not on stderr
  command -v sbatch >/dev/null || { echo "slurm is not installed (run: bash scripts/slurm-local.sh start)" >&2; return 1; }
  munge_ok || { echo "munge does not work (munged not running?)" >&2; return 1; }
  ctld_up || { echo "slurmctld does not answer: $(scontrol ping 2>&1 | head -n1)" >&2; return 1; }
  node_ready || { echo "node $NODE is '$(node_state)': $(scontrol show node "$NODE" 2>/dev/null | grep -o 'Reason=.*')" >&2; return 1; }
  local out
  out=$(cd /tmp && sbatch --test-only --nodes=1 --gres=gpu:1 --time=1 --wrap true 2>&1) ||
    { echo "sbatch --test-only refused a job: $out" >&2; return 1; }
}

print_state() {
  sinfo -N -o '%N %P %T %c %m %G' 2>/dev/null || true
  squeue 2>/dev/null | head -n 20 || true
}

cmd_start() {
  [[ $(id -u) == 0 ]] || { can_submit 2>/dev/null && exit 0; die "start needs root"; }
  mkdir -p "$ROOT" "$RUN" "$LOG" "$ROOT/state" "$ROOT/spool/slurmd"
  exec 9>"$ROOT/start.lock"
  flock -w 900 9 || die "another 'slurm-local.sh start' holds $ROOT/start.lock"
  install_packages
  make_fake_gpus
  local changed='' conf gres
  conf=$(render_slurm_conf) # a failing render stops the script here (set -e), writing nothing
  gres=$(render_gres_conf)
  write_if_changed "$CONF" "$conf" && changed+=" $CONF"
  write_if_changed "$GRES_CONF" "$gres" && changed+=" $GRES_CONF"
  if [[ -z $changed ]] && ctld_up && node_ready && munge_ok; then
    say "already running: $(node_state) node $NODE, nothing to do"
    exit 0
  fi
  if [[ -n $changed ]]; then
    say "wrote$changed"
    # A changed config (GRES, memory) needs both daemons restarted; only ours are restarted.
    stop_daemon slurmd
    stop_daemon slurmctld
  fi
  start_munge
  if ! ctld_up; then start_daemon slurmctld; fi
  for _ in $(seq 100); do ctld_up && break; sleep 0.1; done
  ctld_up || die "slurmctld does not answer 'scontrol ping' (log: $LOG/slurmctld.log)"
  if ! ours_alive slurmd && ! pgrep -x slurmd >/dev/null; then start_daemon slurmd; fi
  local deadline=$((SECONDS + WAIT_S)) resumed=''
  until node_ready; do
    case "$(node_state)" in
      drain* | down*)
        if [[ -z $resumed ]] && ours_alive slurmd; then
          scontrol update NodeName="$NODE" State=RESUME 2>/dev/null || true
          resumed=1
        fi
        ;;
    esac
    ((SECONDS < deadline)) || die "node $NODE is '$(node_state)' after ${WAIT_S}s: $(scontrol show node "$NODE" 2>/dev/null | grep -o 'Reason=.*') (logs: $LOG)"
    sleep 0.5
  done
  say "cluster grpo-local is up"
  print_state
}

cmd_stop() {
  stop_daemon slurmd
  stop_daemon slurmctld
  stop_daemon munged
  say "stopped"
}

cmd_status() {
  if can_submit; then
    say "ok: a job can be submitted"
    print_state
  else
    exit 1
  fi
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
