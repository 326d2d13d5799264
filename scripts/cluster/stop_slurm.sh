#!/usr/bin/env bash
# Stop the single-node SLURM cluster that start_slurm.sh started: cancel its jobs, then end
# slurmd, slurmctld and munged by the PIDs in their PID files (never by name, so no other
# munge or SLURM on the machine is touched). Running it when nothing runs changes nothing.
# Config and logs stay in $OPTDYN_SLURM_DIR for inspection; the next start wipes the state.
set -euo pipefail
source "$(dirname "$0")/slurm_common.sh"

STOP_SECONDS=20

cancel_jobs() {
    running_pid slurmctld >/dev/null || return 0
    local jobs deadline=$((SECONDS + STOP_SECONDS))
    jobs=$(squeue --noheader --format %i 2>/dev/null) || return 0
    [[ -n $jobs ]] || return 0
    echo "Cancelling jobs: $(echo $jobs)"
    scancel $jobs || true
    # Jobs' processes belong to slurmstepd, which outlives slurmd: wait for them to end.
    while ((SECONDS < deadline)) &&
        [[ -n $(squeue --noheader --states RUNNING,COMPLETING --format %i 2>/dev/null) ]]; do
        sleep 1
    done
}

stop_daemon() {
    local name=$1 pid deadline=$((SECONDS + STOP_SECONDS))
    if pid=$(running_pid "$name"); then
        kill -TERM "$pid"
        while ((SECONDS < deadline)) && running_pid "$name" >/dev/null; do
            sleep 0.2
        done
        if running_pid "$name" >/dev/null; then
            echo "$name ($pid) ignored SIGTERM for ${STOP_SECONDS} s: killing it" >&2
            kill -KILL "$pid"
        fi
        echo "Stopped $name ($pid)."
    fi
    rm -f "$(pid_file "$name")"
}

unlink_client_config() {
    [[ -L $CONF_LINK && $(readlink "$CONF_LINK") == "$SLURM_DIR" ]] || return 0
    rm "$CONF_LINK"
    rmdir --ignore-fail-on-non-empty "$(dirname "$CONF_LINK")"
}

require_root
cancel_jobs
for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
    stop_daemon "${DAEMONS[i]}"
done
unlink_client_config
