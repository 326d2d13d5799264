#!/usr/bin/env bash
# Start a private single-node SLURM cluster on this machine, for testing profiles/slurm:
#     sudo scripts/cluster/start_slurm.sh     # then: source /run/optdyn-slurm/env.sh
# Installs munge and SLURM with apt-get if they are missing, writes everything (config, keys,
# state, logs, PID files) under $OPTDYN_SLURM_DIR, starts munged, slurmctld and slurmd, and
# waits until the node is idle. Running it again while the cluster is up changes nothing.
# scripts/cluster/stop_slurm.sh stops exactly these daemons. Settings: see slurm_common.sh.
# Exit codes: 0 running, 1 failed to start, 3 SLURM is not installed and cannot be installed.
set -euo pipefail
source "$(dirname "$0")/slurm_common.sh"

PACKAGES=(slurmctld slurmd slurm-client munge)
STARTUP_SECONDS=60

install_packages() {
    local missing=0 tool
    for tool in munged mungekey slurmctld slurmd sbatch squeue sinfo; do
        command -v "$tool" >/dev/null || missing=1
    done
    ((missing)) || return 0
    command -v apt-get >/dev/null || {
        echo "SLURM is not installed and apt-get is not available to install ${PACKAGES[*]}" >&2
        exit 3
    }
    echo "Installing ${PACKAGES[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    # A fresh machine may have stale package lists: update only when the first try fails.
    apt-get install -y --no-install-recommends "${PACKAGES[@]}" >"$SLURM_DIR/apt.log" 2>&1 ||
        { apt-get update >>"$SLURM_DIR/apt.log" 2>&1 &&
            apt-get install -y --no-install-recommends "${PACKAGES[@]}" >>"$SLURM_DIR/apt.log" 2>&1; } ||
        {
            tail -n 20 "$SLURM_DIR/apt.log" >&2
            echo "could not install ${PACKAGES[*]} (log: $SLURM_DIR/apt.log)" >&2
            exit 3
        }
}

# munged refuses to run unless its key, socket and log live in directories only it can write.
prepare_munge() {
    install -d -m 0755 -o munge -g munge "$MUNGE_DIR"
    if [[ ! -s $MUNGE_DIR/munge.key ]]; then
        mungekey --create --keyfile "$MUNGE_DIR/munge.key"
    fi
    chown munge:munge "$MUNGE_DIR/munge.key"
    chmod 0600 "$MUNGE_DIR/munge.key"
}

# Every run starts from an empty state: job ids restart at 1 and no old job is recovered.
prepare_slurm_dirs() {
    rm -rf "$SLURM_DIR/state" "$SLURM_DIR/spool" "$LOG_DIR"
    install -d -m 0755 "$SLURM_DIR/state" "$SLURM_DIR/spool" "$LOG_DIR" "$PID_DIR"
}

write_config() {
    local host hardware
    host=$(hostname -s)
    # CPUs, topology and RealMemory exactly as slurmd detects them: a node configured with more
    # than slurmd finds is drained instead of becoming idle.
    hardware=$(slurmd -C | head -n 1 | cut -d ' ' -f 2-)
    cat >"$CONF.tmp" <<EOF
# Written by scripts/cluster/start_slurm.sh: a one-node test cluster, not for production.
ClusterName=optdyn
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
# Every daemon binds to 127.0.0.1 only: nothing is reachable from outside the machine.
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$PID_DIR/slurmctld.pid
SlurmdPidFile=$PID_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
# No cgroups (containers often lack them) and no accounting database.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# Finished jobs stay visible to squeue for 5 minutes: without an accounting database, squeue
# is how Snakemake's SLURM executor learns that a job has completed.
MinJobAge=300
NodeName=$host NodeAddr=127.0.0.1 $hardware State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$CONF.tmp" "$CONF"
    printf 'export SLURM_CONF=%q\n' "$CONF" >"$ENV_FILE"
}

# Exit code 3, like a missing SLURM: on such a machine this test cluster cannot work.
link_client_config() {
    if [[ -e $SITE_CONF ]]; then
        echo "$SITE_CONF exists: SLURM commands inside jobs would read that site config, not" \
            "this cluster's (use the site's cluster instead)" >&2
        exit 3
    fi
    if [[ -e $CONF_LINK || -L $CONF_LINK ]] && [[ $(readlink "$CONF_LINK") != "$SLURM_DIR" ]]; then
        echo "$CONF_LINK is in use by another SLURM installation: not replacing it" >&2
        exit 3
    fi
    mkdir -p "$(dirname "$CONF_LINK")"
    ln -sfn "$SLURM_DIR" "$CONF_LINK"
}

start_munged() {
    runuser -u munge -- munged --socket="$MUNGE_SOCKET" --key-file="$MUNGE_DIR/munge.key" \
        --pid-file="$(pid_file munged)" --log-file="$MUNGE_DIR/munged.log" \
        --seed-file="$MUNGE_DIR/munged.seed"
    munge --socket="$MUNGE_SOCKET" --no-input | unmunge --socket="$MUNGE_SOCKET" >/dev/null ||
        die "munged does not answer on $MUNGE_SOCKET (log: $MUNGE_DIR/munged.log)"
}

show_logs() {
    local log
    for log in "$MUNGE_DIR/munged.log" "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log"; do
        [[ -f $log ]] && { echo "--- last lines of $log" >&2; tail -n 15 "$log" >&2; }
    done
    return 0
}

wait_until_idle() {
    local deadline=$((SECONDS + STARTUP_SECONDS)) state
    while ((SECONDS < deadline)); do
        state=$(node_state)
        [[ $state == idle ]] && return 0
        sleep 1
    done
    show_logs
    die "the node is not idle after ${STARTUP_SECONDS} s (sinfo says '${state:-nothing}')"
}

report_ready() {
    echo "SLURM is running: partition '$PARTITION', $(sinfo --noheader --format '%D node, %c CPUs, %m MB')."
    echo "Use it with:  source $ENV_FILE"
}

require_root
mkdir -p "$SLURM_DIR"

alive=0
for daemon in "${DAEMONS[@]}"; do
    running_pid "$daemon" >/dev/null && alive=$((alive + 1))
done
if ((alive == ${#DAEMONS[@]})) && [[ -n $(node_state) ]]; then
    echo "Already running (started earlier by $(basename "$0"))."
    link_client_config
    report_ready
    exit 0
fi
if ((alive > 0)); then
    echo "Some daemons of an earlier start are still running: stopping them first."
    "$(dirname "$0")/stop_slurm.sh"
fi

install_packages
prepare_munge
prepare_slurm_dirs
write_config
link_client_config
start_munged
slurmctld -f "$CONF" || { show_logs; die "slurmctld did not start"; }
slurmd -f "$CONF" || { show_logs; die "slurmd did not start"; }
wait_until_idle
report_ready
