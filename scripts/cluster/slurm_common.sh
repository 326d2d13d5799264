# Shared by start_slurm.sh and stop_slurm.sh (sourced, not run): where the private single-node
# SLURM cluster keeps its files, and how to tell whether its daemons are alive.
#
# Settings (environment variables, all optional):
#   OPTDYN_SLURM_DIR        directory holding config, state, logs and PID files [/run/optdyn-slurm]
#   OPTDYN_SLURM_PARTITION  partition name; must match slurm_partition in profiles/slurm [compute]
#   OPTDYN_SLURM_PORT       slurmctld port; slurmd uses the next one [16817]
# Ports differ from SLURM's defaults (6817/6818) so a site installation on the same machine is
# never disturbed, and every daemon listens on 127.0.0.1 only.

SLURM_DIR=${OPTDYN_SLURM_DIR:-/run/optdyn-slurm}
PARTITION=${OPTDYN_SLURM_PARTITION:-compute}
CTLD_PORT=${OPTDYN_SLURM_PORT:-16817}
SLURMD_PORT=$((CTLD_PORT + 1))

CONF=$SLURM_DIR/slurm.conf
ENV_FILE=$SLURM_DIR/env.sh
MUNGE_DIR=$SLURM_DIR/munge
MUNGE_SOCKET=$MUNGE_DIR/munge.socket
PID_DIR=$SLURM_DIR/pid
LOG_DIR=$SLURM_DIR/log
# Where SLURM commands look for the config when SLURM_CONF is unset and /etc/slurm/slurm.conf
# does not exist (a "configless" slurmd caches its config there). Snakemake's SLURM job step
# (snakemake-executor-plugin-slurm-jobstep) removes every SLURM_* variable, SLURM_CONF
# included, before it calls srun inside the job, so that srun finds this cluster only here.
SITE_CONF=/etc/slurm/slurm.conf
CONF_LINK=/run/slurm/conf
# The daemons this cluster consists of, in start order (stop goes in reverse).
DAEMONS=(munged slurmctld slurmd)

export SLURM_CONF=$CONF

die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

require_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (it starts munged, slurmctld and slurmd)"
}

# munged runs as the munge user, so it writes its PID file into its own directory.
pid_file() {
    if [[ $1 == munged ]]; then echo "$MUNGE_DIR/munged.pid"; else echo "$PID_DIR/$1.pid"; fi
}

# The PID of a daemon started by start_slurm.sh, if that process is still that daemon: a PID
# file left by a crash may name a process that reuses the number, or a zombie (in containers
# whose init does not reap orphans, an ended daemon stays a zombie).
running_pid() {
    local name=$1 pid_file pid
    pid_file=$(pid_file "$name")
    [[ -s $pid_file ]] || return 1
    pid=$(<"$pid_file")
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/stat ]] || return 1
    # /proc, not ps: minimal images lack procps. The state letter follows the ")" of "(comm)".
    local stat
    stat=$(</proc/"$pid"/stat) || return 1
    [[ $(</proc/"$pid"/comm) == "$name" && ${stat##*) } != Z* ]] || return 1
    echo "$pid"
}

# The node's state as sinfo reports it (idle, mixed, allocated, down, ...), empty if unreachable.
node_state() {
    sinfo --noheader --partition "$PARTITION" --format %T 2>/dev/null | head -n 1
}
