#!/usr/bin/env bash
# Issue 18's proxy study and the in-sample vs out-of-fold question, sized for part of one session on the bf16 host.
# Run from a git worktree of a fixed commit:  git worktree add /work/wt3 HEAD && MAIN=/work/main /work/wt3/scripts/study_queue.sh
# Every proxy is the `fast` recipe on fast_fer_t for 12 epochs (1.2 warm-up) with seed 50, one change each, so each
# is paired with the baseline runs/ferplus-w0 (this session's FER+ study, weight 0: the same recipe and seed).
# Proxies compare PublicTest accuracy at equal epochs; contention from other work changes their minutes only.
# D (first): the fast_fer_u phone student distilled from every committed run, 40 epochs.
set -euo pipefail
WT=$(cd "$(dirname "$0")/.." && pwd)
MAIN=${MAIN:-/work/main}
PY=${PY:-$MAIN/.venv/bin/python}
export PYTHONPATH=$WT/src
COMMIT=$(git -C "$WT" rev-parse HEAD)
RUNS=$MAIN/runs
T0=$(date +%s)
fer() { "$PY" -m ferkit "$@"; }
elapsed_min() { echo $(( ($(date +%s) - T0) / 60 )); }
val_acc() { "$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['phases'][-1]['val']['accuracy'])" "$1/summary.json"; }
PROXY=(--config fast --set model=fast_fer_t --set phases.0.epochs=12 --set warmup_epochs=1.2 --seed 50)
echo "study from $COMMIT at $(date -u)"

d=$RUNS/fast_fer_u-distill-e40-s49
fer distill --teacher-logits "$MAIN"/results/runs/* --config student --set model=fast_fer_u --set phases.0.epochs=40 \
    --set warmup_epochs=2 --seed 49 --run-dir "$d"
fer predictions "$d/model.pt" --out "$MAIN/results/runs/fast_fer_u-distill-e40-s49" --commit "$COMMIT" --tta flip
echo "D done at $(elapsed_min) min"

proxy() {  # name, overrides...
    local name=$1; shift
    fer train "${PROXY[@]}" "$@" --run-dir "$RUNS/proxy-$name"
    echo "P $name PublicTest $(val_acc "$RUNS/proxy-$name") at $(elapsed_min) min"
}
proxy crop44 --set model_args.crop=44
proxy ls0.1 --set label_smoothing=0.1
proxy b512 --set batch_size=512 --set lr=0.4
proxy cosine --set scheduler=cosine
proxy ema --set ema_decay=0.995
proxy affine --set phases.0.augment.shift=0.1 --set phases.0.augment.rotation=10
proxy erasing --set phases.0.augment.erasing=0.25
proxy ferplus0.15 --set ferplus_weight=0.15

# In-sample vs out-of-fold teacher logits: 5 fold teachers of the baseline recipe, then two students of the
# same recipe, one from the baseline's in-sample Training logits, one from the folds' out-of-fold ones.
for i in 0 1 2 3 4; do
    fer train "${PROXY[@]}" --set folds=5 --set fold=$i --run-dir "$RUNS/fold5-$i"
done
fer predictions "$RUNS"/fold5-{0,1,2,3,4}/model.pt --out "$RUNS/teacher-oof5" --commit "$COMMIT"
fer predictions "$RUNS/ferplus-w0/model.pt" --out "$RUNS/teacher-insample" --commit "$COMMIT"
echo "teachers done at $(elapsed_min) min"
for t in insample oof5; do
    fer distill --teacher-logits "$RUNS/teacher-$t" "${PROXY[@]}" --run-dir "$RUNS/student-from-$t"
    echo "S $t PublicTest $(val_acc "$RUNS/student-from-$t") at $(elapsed_min) min"
done
echo "study finished at $(elapsed_min) min, $(date -u)"
