#!/usr/bin/env bash
# The GPU checks issue 15 owes, as one prepared run for a lent GPU: torch's measured peak memory
# beside the memory meter's estimate, for the steps and for the caching pass, with s/step.
# Random-weight models of the published architectures are built there; nothing is downloaded.
#
#     bash bench/gpu_wheels.sh           # here, once: the packages that image lacks, into .whl/
#     bash bench/gpu_checks.sh memory    # there (device tool: carry .whl); then memory-flux
#     bash bench/gpu_checks.sh memory 1 2 8   # only those rows of bench/memory.py's table
#
# Sets: memory (bench/memory.py --measure: the shipped SD1.5 and SDXL profiles of the issue's table,
# about 6 minutes on an H200), memory-flux (its Flux rows, NF4 at 512 and 1024 px: building the
# random-weight Flux writes 34 GB, about 4 minutes), bnb-wait (bench/bnb_wait.py: bitsandbytes'
# 8-bit step without its wait after each weight gives the same weights; about 1 minute),
# step-parts (bench/step_parts.py: one SD1.5 step's memory with and without autocast's cache, and
# the savers' time part by part; about 2 minutes), and
# bench/suite.py --meter's sets: sd15 (6 rows), sdxl (the two rows the shipped SDXL profiles
# train), flux (LoRA on an NF4 base at 512 px); tiny tries the suite on a CPU. Each writes
# $OUT/gpu-SET.txt as it goes, so a run stopped at its time limit still brings back the rows it
# finished.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-checks}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1 DBTUI_CACHE=${DBTUI_CACHE:-/tmp/dbtui-cache}
set_name=${1:-sd15}
log="$OUT/gpu-$set_name.txt"
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c "import torch, diffusers, transformers, accelerate, peft; print('torch', torch.__version__, 'diffusers', diffusers.__version__, 'transformers', transformers.__version__, 'accelerate', accelerate.__version__, 'peft', peft.__version__)"
} 2>&1 | tee "$log"
script=""
case "$set_name" in
    bnb-wait) script=bench/bnb_wait.py ;;
    step-parts) script=bench/step_parts.py ;;
esac
if [ -n "$script" ]; then
    python3 "$script" 2>&1 | tee -a "$log"
    exit "${PIPESTATUS[0]}"
fi
case "$set_name" in
    # bench/memory.py's ROWS ("memory 1 2 8" names its own): SD1.5 LoRA, full, full with the savers; SDXL the same; then Flux at 512 and 1024 px.
    memory) only=(--only 3 --only 1 --only 2 --only 4 --only 5 --only 6) ;;
    memory-flux) only=(--only 7 --only 8) ;;
    *) only=() ;;
esac
if [ "$set_name" = memory ] && [ $# -gt 1 ]; then
    only=()
    for row in "${@:2}"; do only+=(--only "$row"); done
fi
if [ ${#only[@]} -gt 0 ]; then
    python3 bench/memory.py --measure "${only[@]}" 2>&1 | tee -a "$log"
    exit "${PIPESTATUS[0]}"
fi
case "$set_name" in
    sd15) rows=() ;;
    sdxl) rows=(--only sdxl-lora-12gb --only sdxl-full-adafactor) ;;
    flux) rows=(--only flux-lora-nf4-512) ;;
    tiny) rows=(--only lora-fp16) ;;
    *) echo "unknown set $set_name: memory, memory-flux, bnb-wait, step-parts, sd15, sdxl, flux or tiny" >&2; exit 2 ;;
esac
python3 bench/suite.py --model "$set_name" --meter --steps 20 "${rows[@]}" 2>&1 | tee -a "$log"
