// Times one-threaded inference of a .tflite model with TFLite's WebAssembly
// build (SIMD, XNNPACK delegate), from the npm package @tensorflow/tfjs-tflite,
// and prints one JSON line: median and fastest seconds per inference and the
// output tensor. Used by scripts/bench-vs-xnnpack.sh.
//
// usage: node xnnpack_bench.js PACKAGE_DIR MODEL INPUT RUNS
'use strict';
const fs = require('fs');
const path = require('path');

async function main() {
  const [pkgDir, modelPath, inputPath, runsArg] = process.argv.slice(2);
  const runs = Number(runsArg || 30);
  if (!pkgDir || !modelPath || !inputPath || !(runs > 0)) {
    throw new Error('usage: node xnnpack_bench.js PACKAGE_DIR MODEL INPUT RUNS');
  }
  // The package's own loader expects a browser; its Emscripten module runs
  // under node when handed the wasm bytes directly.
  const wasmDir = path.join(pkgDir, 'node_modules', '@tensorflow', 'tfjs-tflite', 'wasm');
  const factory = require(path.join(wasmDir, 'tflite_web_api_cc_simd.js'));
  const mod = await factory({ wasmBinary: fs.readFileSync(path.join(wasmDir, 'tflite_web_api_cc_simd.wasm')) });
  const modelBytes = new Uint8Array(fs.readFileSync(modelPath));
  const ptr = mod._malloc(modelBytes.length);
  mod.HEAPU8.set(modelBytes, ptr);
  const made = mod.TFLiteWebModelRunner.CreateFromBufferAndOptions(ptr, modelBytes.length,
    { numThreads: 1, enableProfiling: false, maxProfilingBufferEntries: 1024 });
  if (!made.ok()) {
    throw new Error(`${modelPath}: ${made.errorMessage()}`);
  }
  const runner = made.value();
  const list = (v) => { const a = []; for (let i = 0; i < v.size(); i++) a.push(v.get(i)); v.delete(); return a; };
  const inputs = list(runner.GetInputs());
  const outputs = list(runner.GetOutputs());
  const inData = inputs[0].data();
  const raw = fs.readFileSync(inputPath);
  if (raw.length !== inData.byteLength) {
    throw new Error(`${inputPath}: ${raw.length} bytes, the model's input takes ${inData.byteLength}`);
  }
  new Uint8Array(inData.buffer, inData.byteOffset, inData.byteLength).set(raw);
  if (!runner.Infer()) {
    throw new Error(`${modelPath}: inference failed`);
  }
  const output = Array.from(outputs[0].data());
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    runner.Infer();
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  times.sort((a, b) => a - b);
  const mid = times.length >> 1;
  const median = times.length % 2 ? times[mid] : (times[mid - 1] + times[mid]) / 2;
  console.log(JSON.stringify({ engine: 'tfjs-tflite (XNNPACK, wasm simd, 1 thread)', runs, median_s: median, min_s: times[0], output }));
}

main().catch((e) => { console.error(`xnnpack_bench: ${e.message}`); process.exit(2); });
