#!/usr/bin/env bash
# Download, into .whl/ (git ignores it), the wheels that bench/gpu_checks.sh installs on a GPU
# machine whose Python 3.12 image has torch, transformers, accelerate and peft but not these.
# Needs a package index (pip's), not a GPU. About 52 MB: bitsandbytes is 43 MB of it.
#
#     bash bench/gpu_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .whl && mkdir .whl
# The versions this repository is tested with (pyproject.toml allows a range).
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
    diffusers==0.42.1 pydantic==2.13.4 pydantic_core==2.46.4 annotated-types==0.8.0 typing-inspection==0.4.5 \
    tomli_w==1.2.0 bitsandbytes==0.50.2
ls -l .whl
