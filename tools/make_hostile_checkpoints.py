"""Malformed and hostile checkpoints, and what the reference readers make of them: test/fixtures/graphs-hostile/.

Each .safetensors file breaks one rule of the format; verdicts.json records whether the safetensors library
(safe_open, reading every tensor) accepts it and, if not, its error, so the test holds diffuse's reader to
the library's rules file by file. evil.ckpt is a torch.save archive whose pickle calls os.system when
unpickled (a REDUCE of posix.system): diffuse must refuse it without running anything (the command would
create the marker file named in verdicts.json). legacy.ckpt begins as a pre-1.6 (non-zip) torch file does.
absurd-shape.pth is a real torch.save archive (1 kB) whose tensors claim 2^31 x 2^31 elements over a one-element
storage (an expanded tensor: strides 0), under HED's first key and a ControlNet's: a reader that allocates by the
claimed shape asks for 2^62 floats.

Usage: /opt/diffuse-venv/bin/python tools/make_hostile_checkpoints.py
"""
from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import struct
from pathlib import Path

import torch
from safetensors import safe_open

OUT = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "graphs-hostile"
MARKER = "/tmp/diffuse-hostile-checkpoint-ran"


def safetensors(header: object, data: bytes, *, header_text: bytes | None = None, length: int | None = None) -> bytes:
    text = header_text if header_text is not None else json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text) if length is None else length) + text + data


F32_2 = struct.pack("<2f", 1.0, 2.0)
VALID = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F16", "shape": [2], "data_offsets": [8, 12]}}
VALID_DATA = F32_2 + struct.pack("<2e", 3.0, 4.0)

FILES = {
    "valid.safetensors": safetensors(VALID, VALID_DATA),
    "truncated.safetensors": safetensors(VALID, VALID_DATA)[:-3],
    "trailing-bytes.safetensors": safetensors(VALID, VALID_DATA + b"\0\0\0\0"),
    "overlap.safetensors": safetensors({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                        "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, F32_2 + F32_2[:4]),
    "gap.safetensors": safetensors({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                                    "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}, F32_2 + F32_2[:4]),
    "huge-header.safetensors": safetensors({}, b"", header_text=b"{}", length=1 << 40),
    "header-past-end.safetensors": safetensors({}, b"", header_text=b"{}", length=1000),
    "not-json.safetensors": safetensors(None, b"", header_text=b"this is not JSON"),
    "unknown-dtype.safetensors": safetensors({"a": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}, b"\0" * 16),
    "size-mismatch.safetensors": safetensors({"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 8]}}, F32_2),
}


class Evil:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def torch_files() -> dict[str, bytes]:
    evil = io.BytesIO()
    torch.save({"state_dict": {"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(2)}, "payload": Evil()}, evil)
    # How a pre-1.6 torch file starts (its magic number, protocol version, then pickles); torch.save's own
    # legacy writer names storages by memory address, so it is not byte-reproducible.
    legacy = b"".join(pickle.dumps(v, protocol=2) for v in (0x1950A86A20F9469CFC6C, 1001, {"state_dict": {}}))
    absurd = io.BytesIO()
    huge = torch.zeros(1).expand(2**31, 2**31)
    torch.save({"norm": huge, "control_model.input_blocks.0.0.weight": huge}, absurd)
    return {"evil.ckpt": evil.getvalue(), "legacy.ckpt": legacy, "absurd-shape.pth": absurd.getvalue()}


def verdict(path: Path) -> str:
    try:
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                f.get_tensor(key)
        return "ok"
    except Exception as err:  # the library's own refusal, recorded as it words it
        return f"refused: {type(err).__name__}: {err}"


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    verdicts: dict[str, str] = {}
    for name, data in FILES.items():
        (OUT / name).write_bytes(data)
        verdicts[name] = verdict(OUT / name)
    for name, data in torch_files().items():
        (OUT / name).write_bytes(data)
    if os.path.exists(MARKER):
        raise AssertionError(f"{MARKER} exists: building the files must not run the payload")
    (OUT / "verdicts.json").write_text(json.dumps({"marker": MARKER, "safetensors": verdicts}, indent=1) + "\n")
    print(json.dumps(verdicts, indent=1))


if __name__ == "__main__":
    main()
