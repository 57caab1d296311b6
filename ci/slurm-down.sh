#!/usr/bin/env bash
# Stop the throwaway CI SLURM cluster started by ci/slurm-up.sh:
# cancel all jobs, then stop slurmd, slurmctld, slurmdbd, mariadbd (--accounting) and munged.
# Never fails.
# Packages and configuration are left installed (slurm-up.sh reuses them).
set -u

log() { echo "[slurm-down] $*" >&2; }

# stop_daemon NAME PIDFILE: SIGTERM the daemon (pid file first, exact process
# name as fallback) and wait up to 10 s, then SIGKILL.
stop_daemon() {
  local name="$1" pidfile="$2" pids=""
  if [ -r "$pidfile" ]; then
    pids="$(cat "$pidfile" 2>/dev/null || true)"
    # ignore a stale pid file that points at some other process
    if [ -n "$pids" ] && [ "$(cat "/proc/$pids/comm" 2>/dev/null)" != "$name" ]; then pids=""; fi
  fi
  [ -z "$pids" ] && pids="$(pgrep -x "$name" 2>/dev/null | tr '\n' ' ' || true)"
  [ -z "${pids// /}" ] && return 0
  log "stopping $name ($pids)"
  kill $pids 2>/dev/null || true
  for _ in $(seq 1 20); do
    alive=""
    for p in $pids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
    [ -z "$alive" ] && return 0
    sleep 0.5
  done
  log "killing $name ($alive)"
  kill -9 $alive 2>/dev/null || true
  return 0
}

if command -v squeue >/dev/null 2>&1 && pgrep -x slurmctld >/dev/null 2>&1; then
  jobs="$(timeout 10 squeue -h -o '%i' 2>/dev/null | tr '\n' ' ' || true)"
  if [ -n "${jobs// /}" ]; then
    log "cancelling jobs: $jobs"
    timeout 10 scancel $jobs 2>/dev/null || true
    for _ in $(seq 1 10); do
      [ -z "$(timeout 5 squeue -h -o '%i' 2>/dev/null)" ] && break
      sleep 1
    done
  fi
fi

stop_daemon slurmd /run/slurm/slurmd.pid
stop_daemon slurmctld /run/slurm/slurmctld.pid
stop_daemon slurmdbd /run/slurm/slurmdbd.pid
stop_daemon mariadbd /run/mysqld/mysqld.pid
stop_daemon munged /run/munge/munged.pid
log "done"
exit 0
