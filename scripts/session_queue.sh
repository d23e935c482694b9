#!/usr/bin/env bash
# One session's training queue (issue 18), run from a git worktree of a fixed commit so edits to the main tree
# cannot disturb it:  git worktree add /work/wt HEAD && MAIN=/work/main /work/wt/scripts/session_queue.sh
# Steps run one at a time (2 cores); a step is skipped when its estimate would pass BUDGET_MIN since the start.
# A: FER+ mixing-weight study (fast_fer_t, 12 epochs, w in 0/0.5/1), chosen on PublicTest only;
# B: fast_fer distilled from the committed runs' logits plus FER+ at the chosen weight, 40 epochs;
# C: fast_fer on the plain fast recipe, 40 epochs (target 1's recipe on this bf16 host);
# D: the fast_fer_u phone student distilled from every committed run, 60 epochs.
set -euo pipefail
WT=$(cd "$(dirname "$0")/.." && pwd)
MAIN=${MAIN:-/work/main}
PY=${PY:-$MAIN/.venv/bin/python}
BUDGET_MIN=${BUDGET_MIN:-140}
export PYTHONPATH=$WT/src
COMMIT=$(git -C "$WT" rev-parse HEAD)
RUNS=$MAIN/runs
T0=$(date +%s)
mkdir -p "$RUNS"
fer() { "$PY" -m ferkit "$@"; }
elapsed_min() { echo $(( ($(date +%s) - T0) / 60 )); }
fits() { [ $(( $(elapsed_min) + $1 )) -le "$BUDGET_MIN" ]; }
val_acc() { "$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['phases'][-1]['val']['accuracy'])" "$1/summary.json"; }
keep() {  # run folder, committed name: predictions (single crop + flip TTA) into results/runs/<name>
    fer predictions "$1/model.pt" --out "$MAIN/results/runs/$2" --commit "$COMMIT" --tta flip
}
echo "queue from $COMMIT at $(date -u)"

# A: the FER+ mixing weight, on PublicTest
best_w=0; best_acc=0
for w in 0 0.5 1; do
    fits 6 || { echo "skip A w=$w at $(elapsed_min) min"; continue; }
    d=$RUNS/ferplus-w$w
    fer train --config fast --set model=fast_fer_t --set phases.0.epochs=12 --set warmup_epochs=1.2 \
        --set ferplus_weight=$w --seed 50 --run-dir "$d"
    acc=$(val_acc "$d"); echo "A w=$w PublicTest $acc at $(elapsed_min) min"
    if "$PY" -c "import sys; sys.exit(not float(sys.argv[1]) > float(sys.argv[2]))" "$acc" "$best_acc"; then
        best_w=$w; best_acc=$acc
    fi
done
echo "A chose ferplus_weight=$best_w (PublicTest $best_acc)"

TEACHERS=("$MAIN"/results/runs/*)
# B: the soft-target model (target 2)
if fits 58; then
    d=$RUNS/fast_fer-distill-e40-s47
    fer distill --teacher-logits "${TEACHERS[@]}" --config fast --set model=fast_fer --set phases.0.epochs=40 \
        --set warmup_epochs=2 --set ferplus_weight=$best_w --seed 47 --run-dir "$d"
    keep "$d" fast_fer-distill-e40-s47; echo "B done at $(elapsed_min) min"
else echo "skip B at $(elapsed_min) min"; fi

# C: the plain recipe on fast_fer (target 1)
if fits 58; then
    d=$RUNS/fast_fer-fast-e40-s48
    fer train --config fast --set model=fast_fer --set phases.0.epochs=40 --set warmup_epochs=2 --seed 48 \
        --run-dir "$d"
    keep "$d" fast_fer-fast-e40-s48; echo "C done at $(elapsed_min) min"
else echo "skip C at $(elapsed_min) min"; fi

# D: the smaller phone student from every committed run (those of B and C included)
if fits 14; then
    d=$RUNS/fast_fer_u-distill-e60-s49
    fer distill --teacher-logits "$MAIN"/results/runs/* --config student --set model=fast_fer_u \
        --set ferplus_weight=$best_w --seed 49 --run-dir "$d"
    keep "$d" fast_fer_u-distill-e60-s49; echo "D done at $(elapsed_min) min"
else echo "skip D at $(elapsed_min) min"; fi
echo "queue finished at $(elapsed_min) min, $(date -u)"
