#!/usr/bin/env bash
# One session's training queue (issue 18), run from a git worktree of a fixed commit so edits to the main tree
# cannot disturb it:  git worktree add /work/wt HEAD && MAIN=/work/main /work/wt/scripts/session_queue.sh
# Steps run one at a time (2 cores; a step may put two one-thread runs in the background itself); a step is skipped
# when its estimate would pass BUDGET_MIN since the start. (The queues of earlier sessions are in this file's git
# history.) This session (fourteenth, 2026-12-06, an AMD EPYC host with AVX512-BF16, no GPU lent): the plain recipe
# of seeds 111/112 (fast_fer 44 px, 42 epochs, 2.1 warm-up, mixup 0.2, EMA 0.995, both threads; PrivateTest
# 71.97%/71.91%, PublicTest 0.7077/0.7083) with one change, a label-noise remedy from the plain labels alone:
# progressive self-knowledge distillation (PS-KD, self_distill 0.8, the paper's final weight). Its question: does it
# beat both plain seeds on PublicTest (then it is the candidate recipe for target 1 and owes a second seed).
# Measured: 127 minutes in all on this host (122 of training); PublicTest 0.7102, so it is (a later session: 142).
# Fifteenth session (2026-12-07, AMD EPYC with AVX512-BF16, no GPU lent): the same recipe unchanged, SEED=142, the
# second seed target 1 needs; the rule it is read by is in docs/RESULTS.md, written before it ran.
# Measured: 124 minutes in all (119.6 of training); PrivateTest 71.38%, under 72.0%, so target 1 is not reached.
# Sixteenth session (2026-12-07, AMD EPYC with AVX512-BF16, no GPU lent): the same recipe with one change, the
# network: fast_fer_res (airbench96's three convolutions and a skip per group, 64/192/384, 0.89x fast_fer's MACs
# but 0.86x its training images/s here), 36 epochs so that it takes the same minutes; seed 161. The rule it is
# read by is in docs/RESULTS.md, written before it ran.
# Measured: 97 minutes in all (93.0 of training: the loop ran it as fast as fast_fer, not 0.86x); PublicTest 0.7060,
# under the PS-KD seeds' 0.7102/0.7119, so it was not chosen and this line closed.
# Seventeenth session (2026-12-07, AMD EPYC with AVX512-BF16, no GPU lent): the PS-KD recipe on fast_fer with one
# change, sharpness-aware minimisation (sam_rho 0.05, the ascent on a quarter of each batch: 1.2x the step's time in
# a probe here), 36 epochs so that it takes about the PS-KD runs' minutes; seed 171. The rule it is read by is in
# docs/RESULTS.md, written before it ran.
# Measured: 137 minutes in all (131.2 of training); PublicTest 0.7119, a tie with the better PS-KD seed, not above
# it, so SAM was not chosen and this line closed (PrivateTest 71.75%).
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
step() {  # step, estimated minutes, run name, then a ferkit command and its flags (train ..., distill ...): kept
    local step=$1 est=$2 name=$3; shift 3
    if fits "$est"; then
        fer "$@" --run-dir "$RUNS/$name"
        keep "$RUNS/$name" "$name"; echo "$step done at $(elapsed_min) min"
    else echo "skip $step at $(elapsed_min) min"; fi
}

echo "queue from $COMMIT at $(date -u)"
EPOCHS=${EPOCHS:-36}
SEED=${SEED:-171}
MODEL=${MODEL:-fast_fer}
WARMUP=${WARMUP:-1.8}  # 5% of the epochs, as 2.1 of 42
SAM=${SAM:-0.05}
step A "$((EPOCHS * 4))" "$MODEL-c44-mix-ema-pskd-sam-e$EPOCHS-s$SEED" train --config fast --set model="$MODEL" \
    --set model_args.crop=44 --set phases.0.epochs="$EPOCHS" --set warmup_epochs="$WARMUP" --set threads=2 \
    --set phases.0.augment.mixup=0.2 --set ema_decay=0.995 --set self_distill=0.8 --set sam_rho="$SAM" \
    --seed "$SEED"
echo "queue finished at $(elapsed_min) min, $(date -u)"
