#!/usr/bin/env bash
# One session's training queue (issue 18), run from a git worktree of a fixed commit so edits to the main tree
# cannot disturb it:  git worktree add /work/wt HEAD && MAIN=/work/main /work/wt/scripts/session_queue.sh
# Steps run one at a time (2 cores); a step is skipped when its estimate would pass BUDGET_MIN since the start.
# (The queues of earlier sessions are in this file's git history.) This session (fifth of 2026-12-02):
# B: fast_fer at 40 px distilled from the two strongest committed runs (PublicTest-chosen teachers), 40 epochs (target 2);
# C: fast_fer on the plain `fast` recipe (no teachers), 40 epochs: target 1's first seed and an undistilled member.
set -euo pipefail
WT=$(cd "$(dirname "$0")/.." && pwd)
MAIN=${MAIN:-/work/main}
PY=${PY:-$MAIN/.venv/bin/python}
BUDGET_MIN=${BUDGET_MIN:-128}
export PYTHONPATH=$WT/src
COMMIT=$(git -C "$WT" rev-parse HEAD)
RUNS=$MAIN/runs
T0=$(date +%s)
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

# B: the soft-target model at 40 px from the two strongest committed runs (mean of the two: PublicTest 0.7147)
TEACHERS="$MAIN/results/runs/fast_fer-distill-e40-s47 $MAIN/results/runs/fast_fer-c44-distill-e30-s51" \
    distilled B 70 fast_fer-distill2-e40-s54 --config fast --set model=fast_fer \
    --set phases.0.epochs=40 --set warmup_epochs=2 --seed 54
# C: the plain recipe on fast_fer, no teachers (target 1, first seed)
if fits 66; then
    fer train --config fast --set model=fast_fer --set phases.0.epochs=40 --set warmup_epochs=2 --seed 55 \
        --run-dir "$RUNS/fast_fer-fast-e40-s55"
    keep "$RUNS/fast_fer-fast-e40-s55" fast_fer-fast-e40-s55; echo "C done at $(elapsed_min) min"
else echo "skip C at $(elapsed_min) min"; fi
echo "queue finished at $(elapsed_min) min, $(date -u)"
