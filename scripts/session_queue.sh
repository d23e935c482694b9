#!/usr/bin/env bash
# One session's training queue (issue 18), run from a git worktree of a fixed commit so edits to the main tree
# cannot disturb it:  git worktree add /work/wt HEAD && MAIN=/work/main /work/wt/scripts/session_queue.sh
# Steps run one at a time (2 cores); a step is skipped when its estimate would pass BUDGET_MIN since the start.
# (The queues of earlier sessions are in this file's git history.) This session, after the proxy study chose
# 44 px crops (+1.4 points on fast_fer_t); this host trains fast_fer at 44 px in about 200 s an epoch, so 30 epochs:
# B: fast_fer at 44 px distilled from every committed run, 30 epochs (target 2, the next bundled default);
# D: the fast_fer_t phone student at 44 px distilled from every committed run (B's included), 60 epochs;
# E: the smaller fast_fer_u student at 44 px from the same teachers, 60 epochs.
set -euo pipefail
WT=$(cd "$(dirname "$0")/.." && pwd)
MAIN=${MAIN:-/work/main}
PY=${PY:-$MAIN/.venv/bin/python}
BUDGET_MIN=${BUDGET_MIN:-115}
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
distilled() {  # step, estimated minutes, run name, recipe and overrides: a student of every committed run, kept
    local step=$1 est=$2 name=$3; shift 3
    if fits "$est"; then
        fer distill --teacher-logits "$MAIN"/results/runs/* "$@" --run-dir "$RUNS/$name"
        keep "$RUNS/$name" "$name"; echo "$step done at $(elapsed_min) min"
    else echo "skip $step at $(elapsed_min) min"; fi
}

echo "queue from $COMMIT at $(date -u)"

# B: the soft-target model at 44 px (target 2)
distilled B 108 fast_fer-c44-distill-e30-s51 --config fast --set model=fast_fer --set model_args.crop=44 \
    --set phases.0.epochs=30 --set warmup_epochs=1.5 --seed 51
# D: the phone student at 44 px from every committed run (B's included)
distilled D 28 fast_fer_t-c44-distill-e60-s52 --config student --set model=fast_fer_t --set model_args.crop=44 --seed 52
# E: the smaller student at 44 px
distilled E 14 fast_fer_u-c44-distill-e60-s53 --config student --set model=fast_fer_u --set model_args.crop=44 --seed 53
echo "queue finished at $(elapsed_min) min, $(date -u)"
