"""Checkpoints described by a few kilobytes: a recipe (key, dtype, shape, how to fill) and an integer hash.

Full-vocabulary test models are megabytes of weights, too much to commit; their values instead come from a
counter-based hash both this script and test/helpers/synthetic-checkpoint.ts compute, so the test writes
the byte-identical .safetensors file (its SHA-256 is recorded and checked) from the committed recipe.

Value of element i of the t-th tensor: k = lowbias32(i + (t + 1) * 0x9E3779B9 + seed * 0x85EBCA6B) >> 25, a
7-bit integer, and value = mean + (k - 64) * 2^(scale_exp - 6): uniform on [mean - 2^e, mean + 2^e), exactly
representable in F32, F16 and BF16 (7 significant bits, mean 0 or 1 with e <= -1), so every reader sees the
same numbers. Integer tensors (position ids) hold 0, 1, 2, ... The file is laid out as the safetensors
library writes it: compact JSON header in recipe order, padded with spaces to 8 bytes, tensors back to back.
"""
from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import torch

DTYPES = {"F32": (np.float32, torch.float32), "F16": (np.float16, torch.float16), "BF16": (None, torch.bfloat16),
          "I64": (np.int64, torch.int64)}
MASK = 0xFFFFFFFF


def lowbias32(x: np.ndarray) -> np.ndarray:
    x = x & MASK
    x ^= x >> 16
    x = (x * 0x7FEB352D) & MASK
    x ^= x >> 15
    x = (x * 0x846CA68B) & MASK
    x ^= x >> 16
    return x


def values(seed: int, index: int, count: int, scale_exp: int, mean: float) -> np.ndarray:
    i = np.arange(count, dtype=np.uint64)
    k = lowbias32(i + np.uint64(((index + 1) * 0x9E3779B9 + seed * 0x85EBCA6B) & MASK)) >> np.uint64(25)
    return mean + (k.astype(np.float64) - 64.0) * 2.0 ** (scale_exp - 6)


def fill_for(key: str, shape: list[int]) -> tuple[str, int, float]:
    """How a tensor is filled: norm scales around 1, everything else around 0 with ~1/sqrt(fan_in) spread."""
    if len(shape) == 1 and key.endswith(".weight"):
        return ("uniform", -1, 1.0)
    if len(shape) >= 2:
        fan_in = math.prod(shape[1:])
        return ("uniform", -round(math.log2(math.sqrt(fan_in))), 0.0)
    return ("uniform", -3, 0.0)


def tensor_of(seed: int, index: int, entry: list) -> torch.Tensor:
    """An optional 7th field names the stream (another file's tensor index) to take the values from."""
    key, dtype, shape, kind, scale_exp, mean = entry[:6]
    stream = entry[6] if len(entry) > 6 else index
    count = math.prod(shape)
    if kind == "arange":
        data = torch.arange(count, dtype=torch.int64)
    else:
        data = torch.from_numpy(values(seed, stream, count, scale_exp, mean)).to(DTYPES[dtype][1])
    return data.reshape(shape)


def tensors(recipe: dict) -> dict[str, torch.Tensor]:
    return {entry[0]: tensor_of(recipe["seed"], t, entry) for t, entry in enumerate(recipe["tensors"])}


def to_bytes(recipe: dict) -> bytes:
    """An optional "metadata" (string to string) is the header's __metadata__, first, as transformers' files carry it."""
    header: dict[str, object] = {"__metadata__": recipe["metadata"]} if "metadata" in recipe else {}
    chunks: list[bytes] = []
    offset = 0
    for t, entry in enumerate(recipe["tensors"]):
        key, dtype, shape = entry[0], entry[1], entry[2]
        tensor = tensor_of(recipe["seed"], t, entry)
        raw = tensor.view(torch.int16).numpy().tobytes() if dtype == "BF16" else tensor.numpy().astype(DTYPES[dtype][0]).tobytes()
        header[key] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return len(text).to_bytes(8, "little") + text + b"".join(chunks)


def recipe_for(seed: int, checkpoint: dict[str, torch.Tensor], dtype: str, arange_keys: tuple[str, ...] = ()) -> dict:
    """A recipe with the keys and shapes of `checkpoint` (in its order), floats stored as `dtype`."""
    entries = []
    for key, tensor in checkpoint.items():
        shape = list(tensor.shape)
        if key in arange_keys:
            entries.append([key, "I64", shape, "arange", 0, 0.0])
        else:
            kind, scale_exp, mean = fill_for(key, shape)
            entries.append([key, dtype, shape, kind, scale_exp, mean])
    return {"seed": seed, "tensors": entries}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
