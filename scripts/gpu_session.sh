#!/usr/bin/env bash
# One prepared call of the `device` tool's GPU (README, "Long schedules on a lent GPU"): the plain `fast` recipe on
# fast_fer at 44 px with a long schedule, two groups of seeds side by side, each fitted to BUDGET seconds by
# scripts/gpu_train.py. Group a: random crops and flips (the CPU recipe); group b: the same plus the affine and
# erasing augmentation that a 12-epoch proxy could not use (RESULTS, proxy study) but a long schedule may need.
# Each model.pt comes back under $OUT/<group>/; prediction files are written back here (`ferkit predictions`), so
# that they name the shared FER2013 file rather than the unpacked copy.
#
# There (repository root, .gpu and .whl carried):  bash scripts/gpu_session.sh
# A dry run here on small data:  PACK=/tmp/p/part1 ACCEL=cpu EPOCHS=2 BUDGET=120 OUT=/tmp/o WHL=none EXTRA="--limit 300" bash scripts/gpu_session.sh
set -euo pipefail
PACK=${PACK:-.gpu/part1}
ACCEL=${ACCEL:-gpu}
EPOCHS=${EPOCHS:-300}
BUDGET=${BUDGET:-420}
SEEDS_A=${SEEDS_A:-"81 82 83"}
SEEDS_B=${SEEDS_B:-"84 85 86"}
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
common=(--set model=fast_fer --set model_args.crop=44 --set accelerator="$ACCEL" --set threads=2)
# shellcheck disable=SC2206  # EXTRA: more flags for a dry run, e.g. "--limit 300"
common+=(${EXTRA:-})
group() {  # name, seeds, more `ferkit train` flags
    local name=$1 seeds=$2; shift 2
    # shellcheck disable=SC2086  # seeds is a list
    OMP_NUM_THREADS=2 python3 scripts/gpu_train.py --csv "$CSV" --config fast --seeds $seeds --epochs "$EPOCHS" --half \
        --budget "$BUDGET" --out "$OUT/$name" --runs "/tmp/ferkit-gpu-$name" -- "${common[@]}" "$@" \
        > "/tmp/gpu-$name.log" 2>&1 || echo "group $name: exit $?"
    tail -n 4 "/tmp/gpu-$name.log"
}
group a "$SEEDS_A" &
group b "$SEEDS_B" --set phases.0.augment.rotation=10 --set phases.0.augment.shift=0.1 \
    --set phases.0.augment.erasing=0.25 &
wait
ls -la "$OUT"/*
