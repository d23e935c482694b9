#!/usr/bin/env bash
# One session's training queue (issue 18), run from a git worktree of a fixed commit so edits to the main tree
# cannot disturb it:  git worktree add /work/wt HEAD && MAIN=/work/main /work/wt/scripts/session_queue.sh
# Steps run one at a time (2 cores) unless PARALLEL=1; a step is skipped when its estimate would pass BUDGET_MIN
# since the start. (The queues of earlier sessions are in this file's git history.) This session (ninth,
# 2026-12-04, an AMX host again): target 1 only. Two seeds of the plain `fast` recipe on fast_fer at 44 px (the
# proxy study's one clear gain, +1.4 points), no teachers, 45 epochs, run side by side with one thread each: two
# one-thread steps measured 474 images/s together against 408 for one two-thread step (bench_train, this host),
# and both seeds then finish inside the session whatever the other work costs.
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
plain44() {  # step, run name, seed: the plain fast recipe on fast_fer at 44 px, one thread, kept
    OMP_NUM_THREADS=1 fer train --config fast --set model=fast_fer --set model_args.crop=44 \
        --set phases.0.epochs=45 --set warmup_epochs=2.25 --set threads=1 --seed "$3" --run-dir "$RUNS/$2"
    OMP_NUM_THREADS=1 keep "$RUNS/$2" "$2"; echo "$1 done at $(elapsed_min) min"
}
plain44 B fast_fer-c44-fast-e45-s71 71 > "$RUNS/B.log" 2>&1 &
plain44 C fast_fer-c44-fast-e45-s72 72 > "$RUNS/C.log" 2>&1 &
wait
echo "queue finished at $(elapsed_min) min, $(date -u)"
