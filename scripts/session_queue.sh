#!/usr/bin/env bash
# One session's training queue (issue 18), run from a git worktree of a fixed commit so edits to the main tree
# cannot disturb it:  git worktree add /work/wt HEAD && MAIN=/work/main /work/wt/scripts/session_queue.sh
# Steps run one at a time (2 cores); a step is skipped when its estimate would pass BUDGET_MIN since the start.
# (The queues of earlier sessions are in this file's git history.) This session (seventh of 2026-12-02, again an
# Intel Xeon without AVX512-BF16: fp32, no fast_fer job fits):
# A: the ReLU phone student fast_fer_tr distilled from all eleven committed runs, 50 epochs, its checkpoint kept in
#    runs/ for the quantisation-aware fine-tuning that follows (a continuation from a later commit, once QAT
#    covers FastFer: AFTER_PID=<A's process> A_COMMIT=<A's commit> T0=<A's start>).
set -euo pipefail
WT=$(cd "$(dirname "$0")/.." && pwd)
MAIN=${MAIN:-/work/main}
PY=${PY:-$MAIN/.venv/bin/python}
BUDGET_MIN=${BUDGET_MIN:-120}
export PYTHONPATH=$WT/src
COMMIT=$(git -C "$WT" rev-parse HEAD)
RUNS=$MAIN/runs
T0=${T0:-$(date +%s)}
mkdir -p "$RUNS"
fer() { "$PY" -m ferkit "$@"; }
elapsed_min() { echo $(( ($(date +%s) - T0) / 60 )); }
fits() { [ $(( $(elapsed_min) + $1 )) -le "$BUDGET_MIN" ]; }
keep() {  # run folder, committed name: predictions (single crop + flip TTA) into results/runs/<name>
    fer predictions "$1/model.pt" --out "$MAIN/results/runs/$2" --commit "$COMMIT" --tta flip
}
TEACHERS=${TEACHERS:-"$MAIN/results/runs/*"}
distilled() {  # step, estimated minutes, run name, recipe and overrides: a student of $TEACHERS, kept
    local step=$1 est=$2 name=$3; shift 3
    if fits "$est"; then
        # shellcheck disable=SC2086  # TEACHERS is a glob or a list of run folders
        fer distill --teacher-logits $TEACHERS "$@" --run-dir "$RUNS/$name"
        keep "$RUNS/$name" "$name"; echo "$step done at $(elapsed_min) min"
    else echo "skip $step at $(elapsed_min) min"; fi
}

echo "queue from $COMMIT at $(date -u)"
# the runs committed before this queue, listed now so that A's own predictions never become a teacher
TEACHERS=$(echo "$MAIN"/results/runs/*)
echo "teachers: $TEACHERS"

distilled A 70 fast_fer_tr-distill11-e50-s60 --config student --set model=fast_fer_tr --set phases.0.epochs=50 \
    --set warmup_epochs=2.5 --seed 60
echo "queue finished at $(elapsed_min) min, $(date -u)"
