#!/usr/bin/env bash
# Times whole-model inference of the harness's reference executor and of
# Arm NN's reference backend (CpuRef) on the same models, inputs and machine,
# and prints the ratio. Needs ../shared/data; installs Debian's Arm NN when
# missing (root). Usage: scripts/bench-vs-armnn.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-30}"
data="../shared/data"
[ -d "$data/models" ] || { echo "bench-vs-armnn: $data/models is absent" >&2; exit 1; }

if ! /usr/bin/python3 -c 'import pyarmnn' 2>/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pyarmnn libarmnn-cpuref-backend22 libarmnntfliteparser22
fi

bin="$(mktemp -d)/harness"
go build -o "$bin" ./harness

printf '%-32s %14s %14s %8s\n' model harness_s armnn_cpuref_s ratio
for pair in kws_dscnn_int8:kws_ref_input0_int8 ic_resnet8_int8:rand_ic_32x32x3_int8 \
            ad_fc_autoencoder_int8:rand_ad_640_int8 micro_speech_int8:micro_speech_yes_features_int8; do
  m="$data/models/${pair%%:*}.tflite"
  in="$data/inputs/${pair##*:}.bin"
  ours=$("$bin" infer "$m" --input "$in" --bench "$runs" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["median_s"])')
  theirs=$(/usr/bin/python3 scripts/armnn_bench.py "$m" --input "$in" --runs "$runs" --json | /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["median_s"])')
  ratio=$(/usr/bin/python3 -c "print(f'{$theirs/$ours:.1f}x')")
  printf '%-32s %14.6f %14.6f %8s\n' "${pair%%:*}" "$ours" "$theirs" "$ratio"
done
