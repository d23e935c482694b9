#!/usr/bin/env bash
# The queue's continuation (issue 18 part 4), from a git worktree of a later commit than the queue's:
#   git worktree add /work/wt-qat HEAD && MAIN=/work/main /work/wt-qat/scripts/session_qat.sh
# Waits for the queue's step D (the ReLU student fast_fer_tr, its checkpoint in runs/), fine-tunes it with the
# full-integer file's rounding simulated (qat_student recipe, same teachers as D), then writes its full-integer ONNX
# file with the export's agreement check (>= 99% of PrivateTest faces on torch's top expression). Runs niced: the
# queue's next step trains beside it. (Run twice this session: at 541ceb6, then with QAT_NAME=<...>-qat999 SEED=66
# from the commit whose full-integer file takes its ranges at the 99.999th percentile.)
set -euo pipefail
WT=$(cd "$(dirname "$0")/.." && pwd)
MAIN=${MAIN:-/work/main}
PY=${PY:-$MAIN/.venv/bin/python}
export PYTHONPATH=$WT/src
STUDENT=${STUDENT:-fast_fer_tr-distill12-e50-s64}
RUN=$MAIN/runs/${QAT_NAME:-$STUDENT-qat}
SEED=${SEED:-65}
fer() { nice -n 10 "$PY" -m ferkit "$@"; }
echo "qat from $(git -C "$WT" rev-parse HEAD) at $(date -u), waiting for $STUDENT"
until [ -f "$MAIN/results/runs/$STUDENT/run.json" ]; do sleep 30; done
# the teachers of D: the twelve runs committed before the queue (run.json's recipe lists them)
mapfile -t TEACHERS < <("$PY" -c "import json,sys; print('\n'.join(json.load(open(sys.argv[1]))['recipe']['teacher_logits']))" \
    "$MAIN/results/runs/$STUDENT/run.json")
fer distill --teacher-logits "${TEACHERS[@]}" --config qat_student --set "init=$MAIN/runs/$STUDENT/model.pt" \
    --seed "$SEED" --run-dir "$RUN"
echo "qat done at $(date -u)"
fer export "$RUN/model.pt" --format onnx-int8 --int8 static --out "$RUN/model.int8.onnx" || echo "int8 export refused"
fer export "$MAIN/runs/$STUDENT/model.pt" --format onnx-int8 --int8 static --out "$MAIN/runs/$STUDENT/model.int8.onnx" \
    || echo "int8 export of the student before QAT refused"
echo "finished at $(date -u)"
