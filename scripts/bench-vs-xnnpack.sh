#!/usr/bin/env bash
# Times the harness's reference executor against TFLite's WebAssembly build
# with the XNNPACK delegate (npm @tensorflow/tfjs-tflite, SIMD, one thread)
# on the same models, inputs and machine, side by side: each round runs one
# then the other, and the ratio is taken per round. Prints each round, the
# median ratio, and whether `harness infer --rounding single` reproduces
# XNNPACK's output exactly.
#
# usage: scripts/bench-vs-xnnpack.sh [RUNS] [ROUNDS]
# Installs the npm package into ${HARNESS_NPM_CACHE:-~/.cache/harness/npm}
# (never into the repository); skips (exit 0, with the reason) when node,
# npm, the package or ../shared/data is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-30}"
rounds="${2:-4}"
data="../shared/data"
skip() { echo "bench-vs-xnnpack: skipped: $*" >&2; exit 0; }

[ -d "$data/models" ] || skip "$data/models is absent (the shared test data)"
command -v node >/dev/null || skip "node is not installed (Debian: nodejs)"
command -v npm >/dev/null || skip "npm is not installed (Debian: npm)"

pkgdir="${HARNESS_NPM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/harness/npm}/tfjs-tflite-0.0.1-alpha.10"
if [ ! -f "$pkgdir/node_modules/@tensorflow/tfjs-tflite/wasm/tflite_web_api_cc_simd.wasm" ]; then
  mkdir -p "$pkgdir"
  (cd "$pkgdir" && [ -f package.json ] || echo '{"private":true}' > "$pkgdir/package.json")
  if ! (cd "$pkgdir" && npm install --silent --no-audit --no-fund \
        @tensorflow/tfjs-tflite@0.0.1-alpha.10 @tensorflow/tfjs-core@4.9.0 @tensorflow/tfjs-backend-cpu@4.9.0 >&2); then
    skip "npm could not install @tensorflow/tfjs-tflite@0.0.1-alpha.10"
  fi
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
bin="$tmp/harness"
go build -o "$bin" ./harness

field() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s)[process.argv[1]];console.log(Array.isArray(v)?v.join(","):v)})' "$1"; }

printf '%-18s %5s %12s %12s %8s\n' model round harness_s xnnpack_s ratio
for pair in kws_dscnn_int8:kws_ref_input0_int8 ic_resnet8_int8:rand_ic_32x32x3_int8; do
  name="${pair%%:*}"
  m="$data/models/$name.tflite"
  in="$data/inputs/${pair##*:}.bin"
  ratios=()
  for r in $(seq 1 "$rounds"); do
    ours=$("$bin" infer "$m" --input "$in" --bench "$runs" --json | field median_s)
    # TFLite's "Created XNNPACK delegate" notes go to stderr: kept only on failure.
    if ! theirs_json=$(node scripts/xnnpack_bench.js "$pkgdir" "$m" "$in" "$runs" 2>"$tmp/node.err"); then
      cat "$tmp/node.err" >&2
      exit 2
    fi
    theirs=$(echo "$theirs_json" | field median_s)
    ratio=$(node -e "console.log(($ours/$theirs).toFixed(3))")
    ratios+=("$ratio")
    printf '%-18s %5s %12.6f %12.6f %8s\n' "$name" "$r" "$ours" "$theirs" "$ratio"
  done
  med=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
  xo=$(echo "$theirs_json" | field output)
  so=$("$bin" infer "$m" --input "$in" --rounding single --json | field output)
  same="differs (harness single: $so; xnnpack: $xo)"
  [ "$xo" = "$so" ] && same="identical"
  echo "$name: harness/xnnpack median ratio $med over $rounds rounds (${ratios[*]}); --rounding single output vs XNNPACK: $same"
done
