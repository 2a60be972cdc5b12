"""Writing reference arrays (raw little-endian float32 .bin), PNGs and the JSON manifest; recording RNG draws."""
from __future__ import annotations

import contextlib
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from gzip_json import write_gzip_text

ArrayRef = dict[str, object]


class RefWriter:
    """Owns one output folder: every file written is listed once; rewriting a name is a bug."""

    def __init__(self, out_dir: Path) -> None:
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
        self.out_dir = out_dir
        self.files: set[str] = set()

    def _claim(self, file: str) -> Path:
        if file in self.files:
            raise ValueError(f"reference file written twice: {file}")
        self.files.add(file)
        return self.out_dir / file

    def array(self, name: str, value: torch.Tensor | np.ndarray) -> ArrayRef:
        data = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        if not np.all(np.isfinite(data)):
            raise ValueError(f"non-finite values in reference {name}")
        file = f"{name}.bin"
        data.astype("<f4").tofile(self._claim(file))
        return {"file": file, "shape": list(data.shape), "dtype": "float32"}

    def png(self, name: str, image: Image.Image) -> str:
        file = f"{name}.png"
        image.save(self._claim(file), format="PNG")
        return file

    def manifest_gz(self, file: str, content: dict[str, object]) -> None:
        """A large manifest, compact and gzipped (read by test/helpers/fixtures.ts readJson)."""
        write_gzip_text(self._claim(file), json.dumps(content, separators=(",", ":"), allow_nan=False))

    def manifest(self, file: str, content: dict[str, object]) -> None:
        # allow_nan=False: JSON has no Infinity/NaN; to_json_value spells them as strings first.
        self._claim(file).write_text(json.dumps(content, indent=1, allow_nan=False) + "\n")

    def finish(self, max_mb: float) -> float:
        """Checks the folder against its share of the fixtures' size budget and says what was written; returns MB."""
        size = sum(f.stat().st_size for f in self.out_dir.rglob("*") if f.is_file()) / 1e6
        if size > max_mb:
            raise AssertionError(f"{self.out_dir} is {size:.2f} MB > {max_mb} MB")
        print(f"references: {len(self.files)} files in {self.out_dir}, {size:.3f} MB")
        return size


@contextlib.contextmanager
def record_randn(*module_names: str) -> Iterator[list[tuple[str, torch.Tensor]]]:
    """Record every diffusers randn_tensor call made from the given modules, in call order.

    diffusers draws the initial latents (pipeline), per-step noise (schedulers) and VAE posterior samples
    through module-level `randn_tensor` imports, so wrapping those names captures exactly what was drawn.
    """
    draws: list[tuple[str, torch.Tensor]] = []
    originals: dict[str, object] = {}

    def wrap(module_name: str, fn):
        def recording(*args, **kwargs):
            out = fn(*args, **kwargs)
            draws.append((module_name, out.detach().clone()))
            return out

        return recording

    try:
        for name in module_names:
            module = sys.modules[name]
            if not hasattr(module, "randn_tensor"):
                continue  # e.g. PNDM, LMS, Heun: deterministic, they never draw
            originals[name] = module.randn_tensor
            module.randn_tensor = wrap(name, module.randn_tensor)
        yield draws
    finally:
        for name, fn in originals.items():
            sys.modules[name].randn_tensor = fn


def to_json_value(value: object) -> object:
    """Config values as strict JSON: tuples/tensors -> lists; non-finite floats -> "Infinity"/"-Infinity"/"NaN",
    the strings JavaScript's Number() parses back (e.g. DPMSolverMultistep's lambda_min_clipped = -inf)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return to_json_value(np.asarray(value).tolist())
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json_value(v) for k, v in value.items()}
    return value
