#!/usr/bin/env bash
# One session's training queue (issue 18), run from a git worktree of a fixed commit so edits to the main tree
# cannot disturb it:  git worktree add /work/wt HEAD && MAIN=/work/main /work/wt/scripts/session_queue.sh
# Steps run one at a time (2 cores); a step is skipped when its estimate would pass BUDGET_MIN since the start.
# (The queues of earlier sessions are in this file's git history.) This session (eighth, 2026-12-04: the first
# host with AMX, bf16 training; fast_fer at about 480 images/s in bench_train, an epoch near a minute):
# A: fast_fer at 40 px distilled from all twelve committed runs, 40 epochs (target 2; the weaker teachers add the
#    soft knowledge the two-strongest run lacked, fifth session);
# D: the ReLU phone student fast_fer_tr from the same twelve, 50 epochs, its checkpoint kept in runs/ for the
#    quantisation-aware fine-tuning (ferkit.training.qat) that follows;
# B, C: the plain recipe on fast_fer, no teachers, 40 epochs, two seeds (target 1).
set -euo pipefail
WT=$(cd "$(dirname "$0")/.." && pwd)
MAIN=${MAIN:-/work/main}
PY=${PY:-$MAIN/.venv/bin/python}
BUDGET_MIN=${BUDGET_MIN:-145}
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
# the runs committed before this queue, listed now so that this queue's own runs never become a teacher
TEACHERS=$(echo "$MAIN"/results/runs/*)
echo "teachers: $TEACHERS"
plain() {  # step, run name, seed: the plain fast recipe on fast_fer (no teachers), kept
    if fits 50; then
        fer train --config fast --set model=fast_fer --set phases.0.epochs=40 --set warmup_epochs=2 --seed "$3" \
            --run-dir "$RUNS/$2"
        keep "$RUNS/$2" "$2"; echo "$1 done at $(elapsed_min) min"
    else echo "skip $1 at $(elapsed_min) min"; fi
}

distilled A 50 fast_fer-distill12-e40-s61 --config fast --set model=fast_fer --set phases.0.epochs=40 \
    --set warmup_epochs=2 --seed 61
distilled D 20 fast_fer_tr-distill12-e50-s64 --config student --set model=fast_fer_tr --set phases.0.epochs=50 \
    --set warmup_epochs=2.5 --seed 64
plain B fast_fer-fast-e40-s62 62
plain C fast_fer-fast-e40-s63 63
echo "queue finished at $(elapsed_min) min, $(date -u)"
