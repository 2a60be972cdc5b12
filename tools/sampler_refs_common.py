"""Shared pieces of the sampler reference scripts: k-diffusion loading, the dummy network, the
noise pool and JSON output. See make_sampler_refs.py."""

import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np
import torch

OUT_DIR = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "samplers"

# stable-diffusion-v1-5/scheduler/scheduler_config.json
SD15_CONFIG = {
    "_class_name": "PNDMScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
    "clip_sample": False,
}

SHAPE = (2, 4, 4, 4)
NUMEL = 2 * 4 * 4 * 4
POOL_SIZE = 48


def load_k_diffusion():
    """k_diffusion.sampling and .external without the package's heavy imports (torchvision, ...):
    only utils.append_dims and torchdiffeq.odeint (unused here) are stubbed."""
    root = None
    for path in sys.path:
        candidate = Path(path) / "k_diffusion" / "sampling.py"
        if candidate.exists():
            root = candidate.parent
            break
    if root is None:
        raise SystemExit("k-diffusion is not installed: pip install k-diffusion==0.1.1.post1 --no-deps")
    package = types.ModuleType("k_diffusion")
    package.__path__ = [str(root)]
    utils = types.ModuleType("k_diffusion.utils")

    def append_dims(x, target_dims):
        return x[(...,) + (None,) * (target_dims - x.ndim)]

    utils.append_dims = append_dims
    torchdiffeq = types.ModuleType("torchdiffeq")
    torchdiffeq.odeint = None
    sys.modules.update({"k_diffusion": package, "k_diffusion.utils": utils, "torchdiffeq": torchdiffeq})
    loaded = {}
    for name in ("sampling", "external"):
        spec = importlib.util.spec_from_file_location(f"k_diffusion.{name}", root / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[f"k_diffusion.{name}"] = module
        setattr(package, name, module)
        spec.loader.exec_module(module)
        loaded[name] = module
    return loaded["sampling"], loaded["external"]


def dummy_net(x_in: torch.Tensor, t) -> torch.Tensor:
    """The stand-in UNet, float32, defined identically in test/schedulers-helpers.ts:
    out[i] = tanh(0.6 * x[i] + 0.3 * x[i - 1] + 0.1 * sin(t / 100)) over the flattened batch item
    (x[-1] wraps to the item's last element), so neighbouring elements mix."""
    t = torch.as_tensor(t, dtype=torch.float32).reshape(-1)
    t = t.expand(x_in.shape[0]) if t.numel() == 1 else t
    flat = x_in.reshape(x_in.shape[0], -1)
    rolled = torch.roll(flat, 1, dims=1).reshape(x_in.shape)
    bias = (0.1 * torch.sin(t / 100)).reshape(-1, 1, 1, 1)
    return torch.tanh(0.6 * x_in + 0.3 * rolled + bias)


def noise_pool(seed: int) -> torch.Tensor:
    return torch.randn((POOL_SIZE,) + SHAPE, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)


class PoolNoise:
    """Hands out the pool's tensors in order: the reference's noise, replayed by the TS test."""

    def __init__(self, pool: torch.Tensor):
        self.pool = pool
        self.used = 0

    def __call__(self, *_args, **_kwargs) -> torch.Tensor:
        if self.used >= self.pool.shape[0]:
            raise RuntimeError("noise pool exhausted")
        out = self.pool[self.used].clone()
        self.used += 1
        return out


def floats(t) -> list:
    """float32 values as the shortest decimal that round-trips through float32."""
    arr = np.asarray(t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t, dtype=np.float32).ravel()
    return [float(np.format_float_positional(v, unique=True, trim="-")) if np.isfinite(v) else None for v in arr]


def f64s(values) -> list:
    return [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def write_json(name: str, data) -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / name
    path.write_text(json.dumps(data, separators=(",", ":")) + "\n")
    print(f"wrote {path.relative_to(OUT_DIR.parent.parent.parent)} ({path.stat().st_size} bytes)")
