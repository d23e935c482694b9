#!/usr/bin/env bash
# One session's training queue (issue 18), run from a git worktree of a fixed commit so edits to the main tree
# cannot disturb it:  git worktree add /work/wt HEAD && MAIN=/work/main /work/wt/scripts/session_queue.sh
# Steps run one at a time (2 cores); a step is skipped when its estimate would pass BUDGET_MIN since the start.
# (The queues of earlier sessions are in this file's git history.) This session (sixth of 2026-12-02, an Intel Xeon
# without AVX512-BF16: fp32 training, fast_fer ~2x slower than on the bf16 hosts, so no fast_fer job fits):
# A: the ReLU phone student fast_fer_tr (int8 ONNX fuses its activations) distilled from all nine committed runs,
#    50 epochs (target 4: 71% at 0.30 ms);
# C (replacing B, fast_fer_ur, once a load-time ratio put fast_fer_tr's int8 file near 0.34 ms): fast_fer_tr at a
#    36 px crop (about 0.8x the MACs), 45 epochs. Run as a continuation from a later commit: AFTER_PID=<A's
#    process> A_COMMIT=<A's commit> T0=<A's start> waits for A, keeps its predictions, then runs C.
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
# the nine runs committed before this queue, listed now so that A's own predictions do not become a teacher of C
TEACHERS=$(echo "$MAIN"/results/runs/*)
echo "teachers: $TEACHERS"

if [ -n "${AFTER_PID:-}" ]; then  # the continuation: A runs already (started from A_COMMIT)
    while kill -0 "$AFTER_PID" 2>/dev/null; do sleep 20; done
    COMMIT=$A_COMMIT keep "$RUNS/fast_fer_tr-distill9-e50-s57" fast_fer_tr-distill9-e50-s57
    echo "A kept at $(elapsed_min) min"
else
    distilled A 88 fast_fer_tr-distill9-e50-s57 --config student --set model=fast_fer_tr --set phases.0.epochs=50 \
        --set warmup_epochs=2.5 --seed 57
fi
distilled C 50 fast_fer_tr-c36-distill9-e45-s59 --config student --set model=fast_fer_tr --set model_args.crop=36 \
    --set phases.0.epochs=45 --set warmup_epochs=2.25 --seed 59
echo "queue finished at $(elapsed_min) min, $(date -u)"
