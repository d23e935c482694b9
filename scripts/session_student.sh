#!/usr/bin/env bash
# The second half of this session's queue (issue 18 part 4), from its own worktree of a fixed commit:
#   git worktree add /work/wt2 HEAD && MAIN=/work/main /work/wt2/scripts/session_student.sh
# It waits for session_queue.sh's step B to be kept, then distils the fast_fer_t phone student from the three
# strongest committed fast_fer runs (B's included), 50 epochs, and keeps its prediction file.
set -euo pipefail
WT=$(cd "$(dirname "$0")/.." && pwd)
MAIN=${MAIN:-/work/main}
PY=${PY:-$MAIN/.venv/bin/python}
B=${B:-fast_fer-distill2-e40-s54}
NAME=${NAME:-fast_fer_t-distill3-e50-s56}
export PYTHONPATH=$WT/src
COMMIT=$(git -C "$WT" rev-parse HEAD)
until grep -q "^B done" "$MAIN/runs/queue.log"; do sleep 20; done
echo "student from $COMMIT at $(date -u)"
R=$MAIN/results/runs
"$PY" -m ferkit distill --teacher-logits "$R/$B" "$R/fast_fer-distill-e40-s47" "$R/fast_fer-c44-distill-e30-s51" \
    --config student --set phases.0.epochs=50 --set warmup_epochs=2.5 --seed 56 --run-dir "$MAIN/runs/$NAME"
"$PY" -m ferkit predictions "$MAIN/runs/$NAME/model.pt" --out "$R/$NAME" --commit "$COMMIT" --tta flip
echo "student done at $(date -u)"
