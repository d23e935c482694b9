#!/usr/bin/env bash
# One prepared call of the `device` tool's GPU (README, "Long schedules on a lent GPU"): fast_fer at 44 px with a
# long schedule, seeds side by side, fitted to BUDGET seconds by scripts/gpu_train.py. Without TEACHERS, the plain
# `fast` recipe in two groups: a, random crops and flips (the CPU recipe); b, the same plus the affine and erasing
# augmentation that a 12-epoch proxy could not use (RESULTS, proxy study) but a long schedule may need. With
# TEACHERS (a folder of committed runs), group a distils from them: their prediction files are re-addressed to the
# unpacked copy (`gpu_data.py retarget`, content checked). Each model.pt comes back under $OUT/a|b/ in float16;
# with PREFIX, their prediction files are made there on the GPU, re-addressed to the shared file, in one tar.
#
# There (repository root, .gpu and .whl carried):  bash scripts/gpu_session.sh
# A dry run here on small data (a pack of made-up faces in /tmp/p; ACCEL=cpu PREDICT_DEVICE=cpu):
#   PACK=/tmp/p/part1 ACCEL=cpu EPOCHS=2 BUDGET=120 OUT=/tmp/o WHL=none EXTRA="--limit 300" bash scripts/gpu_session.sh
set -euo pipefail
PACK=${PACK:-.gpu/part1}
ACCEL=${ACCEL:-gpu}
EPOCHS=${EPOCHS:-300}
BUDGET=${BUDGET:-420}
SEEDS_A=${SEEDS_A:-"81 82 83"}
SEEDS_B=${SEEDS_B:-"84 85 86"}  # "": group a alone
TEACHERS=${TEACHERS:-}  # a folder of committed runs: the seeds distil from them (ferkit distill --teacher-logits)
PREFIX=${PREFIX:-}      # with TEACHERS: prediction files are made there, named $PREFIX-e<epochs>-s<seed>-h200
COMMIT=${COMMIT:-}      # the commit of the tree sent, for those prediction files
OUT=${OUT:?OUT must name the folder that comes back}
WHL=${WHL:-.whl}
if [ -d "$WHL" ]; then  # pydantic is not in the GPU machine's image
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHL"/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, lightning, pydantic; print('torch', torch.__version__, 'lightning', lightning.__version__, \
'pydantic', pydantic.__version__, 'cuda', torch.cuda.is_available())"
CSV=/tmp/fer/fer2013.csv
python3 scripts/gpu_data.py unpack "$PACK" --csv "$CSV"
export FERKIT_CACHE=/tmp/ferkit-cache  # the CSV is parsed once, for every seed and prediction file
stage=()
if [ -n "$TEACHERS" ]; then  # the teachers name the shared file: re-address them to the unpacked copy
    python3 scripts/gpu_data.py retarget "$TEACHERS"/* --parts "$PACK" --csv "$CSV" --out /tmp/teachers
    stage=(--stage distill)
fi
common=(--set model=fast_fer --set model_args.crop=44 --set accelerator="$ACCEL" --set threads=2)
# shellcheck disable=SC2206  # EXTRA: more flags for a dry run, e.g. "--limit 300"
common+=(${EXTRA:-})
group() {  # name, seeds, more `ferkit train` flags
    local name=$1 seeds=$2; shift 2
    # shellcheck disable=SC2086  # seeds is a list
    OMP_NUM_THREADS=2 python3 scripts/gpu_train.py --csv "$CSV" --config fast --seeds $seeds --epochs "$EPOCHS" --half \
        "${stage[@]}" --budget "$BUDGET" --out "$OUT/$name" --runs "/tmp/ferkit-gpu-$name" -- "${common[@]}" "$@" \
        > "/tmp/gpu-$name.log" 2>&1 || echo "group $name: exit $?"
    tail -n 4 "/tmp/gpu-$name.log"
}
if [ -n "$TEACHERS" ]; then
    # shellcheck disable=SC2206  # the teachers' folders
    teachers=(/tmp/teachers/*)
    group a "$SEEDS_A" --teacher-logits "${teachers[@]}"
else
    group a "$SEEDS_A" &
    [ -n "$SEEDS_B" ] && group b "$SEEDS_B" --set phases.0.augment.rotation=10 --set phases.0.augment.shift=0.1 \
        --set phases.0.augment.erasing=0.25 &
    wait
fi
if [ -n "$PREFIX" ]; then  # prediction files of the returned (float16) weights, on the GPU, re-addressed back
    epochs=$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['epochs'])" "$OUT/a/report.json")
    pids=()
    for model in "$OUT"/a/s*.model.pt.00; do
        seed=$(basename "$model" .model.pt.00)
        python3 -m ferkit.cli predictions "$model" --out "/tmp/preds/$PREFIX-e$epochs-$seed-h200" --data "$CSV" \
            --device "${PREDICT_DEVICE:-cuda}" --tta flip ${COMMIT:+--commit "$COMMIT"} > "/tmp/preds-$seed.log" 2>&1 &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do  # a failure here loses nothing: the weights are back; make the files there
        wait "$pid" || { tail -n 3 /tmp/preds-*.log; echo "predictions failed; the models are in \$OUT"; exit 1; }
    done
    python3 scripts/gpu_data.py retarget /tmp/preds/* --parts "$PACK" --csv "$CSV" --out /tmp/back > /dev/null
    tar -C /tmp/back -cf "$OUT/predictions.tar" .
fi
ls -la "$OUT"/*
