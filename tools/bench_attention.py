"""What a fused attention kernel would save in SD 1.5's UNet on ONNX Runtime (CPU), measured on one layer.

The optimum export spells self-attention as MatMul -> Mul -> Softmax -> MatMul, so ORT materialises the
[batch, heads, tokens, tokens] scores (1 GiB per layer at 512x512). This times that against ORT's fused
com.microsoft MultiHeadAttention on the same shapes: 64x64 latents (4096 tokens, 320 channels, 8 heads) and
32x32 (1024 tokens, 640 channels), batch 2 (one CFG step).
Run: /opt/diffuse-venv/bin/python tools/bench_attention.py [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

HEADS = 8
BATCH = 2


def _io(tokens: int, channels: int) -> tuple[list[onnx.ValueInfoProto], onnx.ValueInfoProto]:
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [BATCH, tokens, channels]) for n in "qkv"]
    return inputs, helper.make_tensor_value_info("out", TensorProto.FLOAT, [BATCH, tokens, channels])


def unfused(tokens: int, channels: int) -> onnx.ModelProto:
    d = channels // HEADS
    split = helper.make_tensor("split", TensorProto.INT64, [4], [BATCH, tokens, HEADS, d])
    merge = helper.make_tensor("merge", TensorProto.INT64, [3], [BATCH, tokens, channels])
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [], [d ** -0.5])
    nodes = []
    for n in "qkv":
        nodes.append(helper.make_node("Reshape", [n, "split"], [f"{n}4"]))
        perm = [0, 2, 3, 1] if n == "k" else [0, 2, 1, 3]
        nodes.append(helper.make_node("Transpose", [f"{n}4"], [f"{n}h"], perm=perm))
    nodes += [
        helper.make_node("MatMul", ["qh", "kh"], ["scores"]),
        helper.make_node("Mul", ["scores", "scale"], ["scaled"]),
        helper.make_node("Softmax", ["scaled"], ["probs"], axis=-1),
        helper.make_node("MatMul", ["probs", "vh"], ["ctx"]),
        helper.make_node("Transpose", ["ctx"], ["ctx4"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["ctx4", "merge"], ["out"]),
    ]
    inputs, output = _io(tokens, channels)
    graph = helper.make_graph(nodes, "attention", inputs, [output], initializer=[split, merge, scale])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def fused(tokens: int, channels: int) -> onnx.ModelProto:
    node = helper.make_node("MultiHeadAttention", ["q", "k", "v"], ["out"], domain="com.microsoft", num_heads=HEADS)
    inputs, output = _io(tokens, channels)
    graph = helper.make_graph([node], "attention", inputs, [output])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])


def time_model(model: onnx.ModelProto, feeds: dict[str, np.ndarray], threads: int, runs: int) -> tuple[float, np.ndarray]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    out = session.run(None, feeds)[0]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    for tokens, channels in ((4096, 320), (1024, 640)):
        feeds = {n: rng.standard_normal((BATCH, tokens, channels), dtype=np.float32) for n in "qkv"}
        slow, want = time_model(unfused(tokens, channels), feeds, args.threads, args.runs)
        fast, got = time_model(fused(tokens, channels), feeds, args.threads, args.runs)
        print(json.dumps({"tokens": tokens, "channels": channels, "heads": HEADS, "batch": BATCH, "ort": ort.__version__,
                          "unfused_s": slow, "fused_s": fast, "max_abs_diff": float(np.abs(got - want).max())}))


if __name__ == "__main__":
    main()
