#!/usr/bin/env python3
"""Time whole-model int8 inference of a .tflite model on Arm NN's CpuRef backend.

Usage (Debian's pyarmnn lives in the system interpreter, not in a pyenv one):

    /usr/bin/python3 scripts/armnn_bench.py MODEL.tflite [--input FILE.bin] [--runs N] [--json]

The model is parsed with Arm NN's TfLite parser, optimized for the CpuRef
backend only (no fallback to another backend) and loaded into a runtime. The
input is a raw file of int8 bytes whose size is the input tensor's element
count (all zeros without --input). One untimed warm-up inference is followed by
N timed ones; only the EnqueueWorkload call is inside the time.perf_counter
pair. The median and minimum seconds per inference, the int8 output and its
argmax (lowest index on a tie) are printed; --json prints them as one line.

See scripts/armnn_bench.md for installation and measured numbers.
"""

import argparse
import json
import logging
import os
import statistics
import sys
import time

BACKEND = "CpuRef"
INSTALL_HINT = "install python3-pyarmnn libarmnn-cpuref-backend22 (Debian)"


class BenchError(Exception):
    """A failure reported to the user as one line, with a non-zero exit."""


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Median per-inference time of a .tflite int8 model on Arm NN CpuRef.")
    ap.add_argument("model", help="path to a .tflite model with one int8 input")
    ap.add_argument("--input", metavar="FILE.bin",
                    help="raw int8 input bytes, size = input element count (default: zeros)")
    ap.add_argument("--runs", type=int, default=20,
                    help="number of timed inferences after one warm-up (default 20)")
    ap.add_argument("--json", action="store_true",
                    help="print one JSON line instead of text")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    return args


def import_armnn():
    # pyarmnn logs a warning for every parser it was built without (Caffe, ONNX,
    # TF); those are irrelevant here, so keep them off the terminal.
    logging.getLogger("pyarmnn").setLevel(logging.ERROR)
    try:
        import numpy as np
        import pyarmnn as ann
    except ImportError as exc:
        raise BenchError(
            "pyarmnn not importable by %s (%s): %s, then run with /usr/bin/python3"
            % (sys.executable, exc, INSTALL_HINT))
    return np, ann


def load_input(np, path, count):
    if path is None:
        return np.zeros(count, dtype=np.int8)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise BenchError("cannot read input %s: %s" % (path, exc.strerror or exc))
    if len(raw) != count:
        raise BenchError("input %s has %d bytes, the model's input tensor has %d int8 elements"
                         % (path, len(raw), count))
    return np.frombuffer(raw, dtype=np.int8).copy()


def bench(args):
    np, ann = import_armnn()
    int8_types = {ann.DataType_QAsymmS8, ann.DataType_QSymmS8}

    if not os.path.isfile(args.model):
        raise BenchError("model not found: %s" % args.model)

    parser = ann.ITfLiteParser()
    try:
        network = parser.CreateNetworkFromBinaryFile(args.model)
    except RuntimeError as exc:
        raise BenchError("Arm NN TfLite parser rejected %s: %s" % (args.model, one_line(exc)))

    if parser.GetSubgraphCount() != 1:
        raise BenchError("model has %d subgraphs; only single-subgraph models are supported"
                         % parser.GetSubgraphCount())
    in_names = parser.GetSubgraphInputTensorNames(0)
    out_names = parser.GetSubgraphOutputTensorNames(0)
    if len(in_names) != 1:
        raise BenchError("model has %d inputs; exactly one is supported" % len(in_names))
    if len(out_names) < 1:
        raise BenchError("model has no output tensor")

    in_binding = parser.GetNetworkInputBindingInfo(0, in_names[0])
    out_binding = parser.GetNetworkOutputBindingInfo(0, out_names[0])
    in_info = in_binding[1]
    if in_info.GetDataType() not in int8_types:
        raise BenchError("input tensor %r is not int8 (Arm NN data type %d)"
                         % (in_names[0], in_info.GetDataType()))
    if out_binding[1].GetDataType() not in int8_types:
        raise BenchError("output tensor %r is not int8 (Arm NN data type %d)"
                         % (out_names[0], out_binding[1].GetDataType()))

    data = load_input(np, args.input, in_info.GetNumElements())

    runtime = ann.IRuntime(ann.CreationOptions())
    try:
        optimized, _messages = ann.Optimize(network, [ann.BackendId(BACKEND)],
                                            runtime.GetDeviceSpec(), ann.OptimizerOptions())
    except RuntimeError as exc:
        raise BenchError("Arm NN could not optimize the model for %s only (%s); if CpuRef is "
                         "missing: %s" % (BACKEND, one_line(exc), INSTALL_HINT))
    try:
        net_id, _ = runtime.LoadNetwork(optimized)
    except RuntimeError as exc:
        raise BenchError("Arm NN could not load the network: %s" % one_line(exc))

    inputs = ann.make_input_tensors([in_binding], [data])
    outputs = ann.make_output_tensors([out_binding])

    try:
        runtime.EnqueueWorkload(net_id, inputs, outputs)  # warm-up, not timed
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            runtime.EnqueueWorkload(net_id, inputs, outputs)
            t1 = time.perf_counter()
            times.append(t1 - t0)
    except RuntimeError as exc:
        raise BenchError("Arm NN inference failed: %s" % one_line(exc))

    out = ann.workload_tensors_to_ndarray(outputs)[0].astype(np.int8).reshape(-1)
    values = [int(v) for v in out]
    return {
        "model": args.model,
        "backend": BACKEND,
        "runs": args.runs,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "output": values,
        "argmax": int(np.argmax(out)),  # first index of the maximum on a tie
    }


def one_line(exc):
    return " ".join(str(exc).split())


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = bench(args)
    except BenchError as exc:
        print("armnn_bench: error: %s" % exc, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result))
    else:
        print("model:    %s" % result["model"])
        print("backend:  %s" % result["backend"])
        print("runs:     %d (after 1 warm-up)" % result["runs"])
        print("median_s: %.6f" % result["median_s"])
        print("min_s:    %.6f" % result["min_s"])
        print("output:   %s" % " ".join(str(v) for v in result["output"]))
        print("argmax:   %d" % result["argmax"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
