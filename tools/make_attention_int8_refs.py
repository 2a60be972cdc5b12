"""The arithmetic `--quantize int8-attention` asks ONNX Runtime for, in numpy: the truth for
test/quantize-attention.test.ts.

Usage: /opt/diffuse-venv/bin/python tools/make_attention_int8_refs.py
Writes test/fixtures/attention-int8/refs.json (about 4 kB).

One attention block (1 x 16 queries x 12 keys, hidden 16, 2 heads of 8, SDPA's default scale), its inputs from an
integer recipe the test repeats exactly (every value k / 32768 - 1 times an amplitude, exact in float32; its salt
the first from 0 whose values all keep the margin below, recorded). Each
product A.B is computed as com.microsoft.DynamicQuantizeMatMul documents and implements it (onnxruntime
contrib_ops/cpu/quantization/dynamic_quantize_matmul.cc, GetQuantizationParameter): A to uint8 per tensor over
[min(A, 0), max(A, 0)], scale (max - min) / 255, zero point round(-min / scale); B as the graph edit quantizes it,
per tensor and symmetric: scale max|B| / bound (Max with FLT_MIN), QuantizeLinear (x / scale rounded half to even,
plus the zero point, saturated); the integer products summed exactly, times scale_A * scale_B in float32. Softmax
between them is float32. The output is written per weight format (u8s8, u8u8, u8s7: the bound and zero point).

numpy's exp and ONNX Runtime's differ in the last bits, so a quantized value that sits almost exactly between two
steps could round either way there: the script checks every quantized value is at least MARGIN of a step away
from a tie, so the reference holds whatever float rounding the softmax (or a quantizer multiplying by 1 / scale)
has.
"""
from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "attention-int8" / "refs.json"
QUERIES, KEYS, HIDDEN, HEADS = 16, 12, 16, 2
FORMATS = {"u8s8": (127, 0, np.int8), "u8u8": (127, 128, np.uint8), "u8s7": (63, 0, np.int8)}
FLT_MIN = np.float32(1.1754943508222875e-38)
MARGIN = 1e-3
f32 = np.float32


class TooClose(Exception):
    pass


def recipe(index: int, salt: int, shape: tuple[int, ...], amplitude: float) -> np.ndarray:
    """((i * 2654435761 + index * 40503 + salt * 977 + 12345) mod 65536) / 32768 - 1, times amplitude: exact here and in JS."""
    i = np.arange(int(np.prod(shape)), dtype=np.int64)
    k = (i * 2654435761 + index * 40503 + salt * 977 + 12345) % 65536
    return ((k.astype(np.float64) / 32768 - 1) * amplitude).astype(f32).reshape(shape)


def check_margin(ratio: np.ndarray, what: str) -> None:
    distance = np.abs(np.abs(ratio - np.floor(ratio)) - 0.5).min()
    if distance < MARGIN:
        raise TooClose(f"{what}: a value sits {distance:.4f} of a step from a tie")


def dynamic_quantize(a: np.ndarray, what: str) -> tuple[np.ndarray, np.float32, int]:
    lo, hi = min(f32(a.min()), f32(0)), max(f32(a.max()), f32(0))
    scale = f32(1) if hi == lo else f32((hi - lo) / f32(255))
    zero = int(np.rint(np.clip(f32(0) - lo / scale, 0, 255)))
    ratio = a / scale
    check_margin(ratio, what)
    return np.clip(np.rint(ratio) + zero, 0, 255), scale, zero


def symmetric_quantize(b: np.ndarray, bound: int, zero: int, dtype: type, what: str) -> tuple[np.ndarray, np.float32]:
    scale = max(f32(np.abs(b).max() / f32(bound)), FLT_MIN)
    ratio = b / scale
    check_margin(ratio, what)
    info = np.iinfo(dtype)
    return np.clip(np.rint(ratio) + zero, info.min, info.max), scale


def int8_product(a: np.ndarray, b: np.ndarray, fmt: str, what: str) -> np.ndarray:
    bound, b_zero, dtype = FORMATS[fmt]
    qa, a_scale, a_zero = dynamic_quantize(a, f"{what} A")
    qb, b_scale = symmetric_quantize(b, bound, b_zero, dtype, f"{what} B")
    acc = np.matmul((qa - a_zero).astype(np.int64), (qb - b_zero).astype(np.int64))
    assert np.abs(acc).max() < 2**24, "the float32 product of the sums would round"
    return acc.astype(f32) * f32(a_scale * b_scale)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(f32)


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, fmt: str | None) -> np.ndarray:
    d = HIDDEN // HEADS
    split = lambda x: x.reshape(1, -1, HEADS, d).transpose(0, 2, 1, 3)  # noqa: E731
    # As torch's SDPA export: both sides times sqrt(scale), SDPA's default scale 1 / sqrt(d) in float32.
    root = f32(np.sqrt(f32(1) / f32(np.sqrt(f32(d)))))
    qs, ks, vs = split(q) * root, split(k).transpose(0, 1, 3, 2) * root, split(v)
    product = (lambda a, b, what: int8_product(a, b, fmt, what)) if fmt else (lambda a, b, _: np.matmul(a, b))
    probs = softmax(product(qs, ks, "scores"))
    context = product(probs, vs, "context")
    return context.transpose(0, 2, 1, 3).reshape(1, -1, HIDDEN)


def main() -> None:
    for salt in range(1000):
        q = recipe(0, salt, (1, QUERIES, HIDDEN), 3)
        k = recipe(1, salt, (1, KEYS, HIDDEN), 3)
        v = recipe(2, salt, (1, KEYS, HIDDEN), 1)
        try:
            outputs = {fmt: attention(q, k, v, fmt) for fmt in FORMATS}
            break
        except TooClose as err:
            print(f"salt {salt}: {err}", file=sys.stderr)
    exact = attention(q, k, v, None)
    refs = {}
    for fmt, out in outputs.items():
        print(f"{fmt}: max |int8 - float| / max |float| = {np.abs(out - exact).max() / np.abs(exact).max():.4f}")
        refs[fmt] = base64.b64encode(out.astype("<f4").tobytes()).decode()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    shapes = {"queries": QUERIES, "keys": KEYS, "hidden": HIDDEN, "heads": HEADS, "salt": salt}
    OUT.write_text(json.dumps({"numpy": np.__version__, "shape": shapes, "outputs": refs}, indent=1) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
