"""Gradient references for diffuse's reverse-mode autodiff (src/train/autodiff/): torch autograd on the tiny models.

Usage: /opt/diffuse-venv/bin/python tools/make_autodiff_refs.py
Writes test/fixtures/autodiff/: refs.json (+ .bin arrays). Deterministic: fixed seeds, single-threaded torch.

The models are rebuilt from tools/fixtures_models.py (and make_lcm_fixture.py's LCM UNet) with the seeds the ONNX
fixtures were exported from; the script first checks that each torch module and its ONNX fixture agree on the forward
pass (1e-5 of the largest output), so the gradients below belong to the fixture's weights. Each case feeds fixed random
inputs and differentiates either a weighted sum <w, output> (w is the upstream gradient the TypeScript test feeds)
or torch.nn.functional.mse_loss(output, target) (the graph's built-in loss), with respect to the listed inputs.

The text encoder runs with its token-embedding lookup replaced by `inputs_embeds` (a forward hook returns the given
tensor from token_embedding), which is what src/onnx/text-encoder-embeds-input.ts does to the ONNX graph.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fixtures_models as models  # noqa: E402
from fixtures_io import RefWriter  # noqa: E402
from make_lcm_fixture import TIME_COND_PROJ_DIM, build_lcm_unet  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "test" / "fixtures"
OUT = FIXTURES / "autodiff"
FORWARD_TOLERANCE = 1e-5


def randn(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def check_forward(onnx_path: Path, feeds: dict[str, torch.Tensor], output: str, expected: torch.Tensor) -> float:
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    got = session.run([output], {k: v.numpy() for k, v in feeds.items() if k in names})[0]
    want = expected.detach().numpy()
    err = float(np.abs(got - want).max() / np.abs(want).max())
    if err > FORWARD_TOLERANCE:
        raise AssertionError(f"{onnx_path}: ONNX and torch forward differ by {err:.2e} of max: not the same weights")
    return err


def text_encoder_case(writer: RefWriter) -> dict[str, object]:
    model = models.build_text_encoder()
    embeds = randn((1, 77, 32), 11).requires_grad_(True)
    weight = randn((1, 77, 32), 12)
    ids = torch.tensor([[49406] + [320 + i for i in range(10)] + [49407] * 66])
    # The forward check uses the real lookup: the ONNX fixture still has it.
    with torch.no_grad():
        plain = model(ids).last_hidden_state
    forward_err = check_forward(FIXTURES / "tiny-sd" / "text_encoder" / "model.onnx", {"input_ids": ids.int()}, "last_hidden_state", plain)
    hook = model.text_model.embeddings.token_embedding.register_forward_hook(lambda _m, _i, _o: embeds)
    hidden = model(ids).last_hidden_state
    hook.remove()
    (hidden * weight).sum().backward()
    return {
        "name": "text-encoder",
        "model": "tiny-sd/text_encoder",
        "cut_token_embedding": True,
        "output": "last_hidden_state",
        "inputs": {"inputs_embeds": writer.array("te_inputs_embeds", embeds.detach())},
        "objective": {"kind": "weighted-sum", "weight": writer.array("te_weight", weight)},
        "value": writer.array("te_last_hidden_state", hidden.detach()),
        "grads": {"inputs_embeds": writer.array("te_grad_inputs_embeds", embeds.grad)},
        "forward_check": forward_err,
    }


def unet_case(writer: RefWriter, name: str, unet, onnx_dir: str, channels: int, batch: int, size: int, timesteps: list[float], objective: str, seed: int, cond: bool = False) -> dict[str, object]:
    sample = randn((batch, channels, size, size), seed).requires_grad_(True)
    context = randn((batch, 77, 32), seed + 1).requires_grad_(True)
    timestep = torch.tensor(timesteps, dtype=torch.float32)
    extra = {"timestep_cond": randn((batch, TIME_COND_PROJ_DIM), seed + 2)} if cond else {}
    out = unet(sample, timestep, context, **extra).sample
    feeds = {"sample": sample.detach(), "timestep": timestep, "encoder_hidden_states": context.detach(), **extra}
    forward_err = check_forward(FIXTURES / onnx_dir / "unet" / "model.onnx", feeds, "out_sample", out)
    case: dict[str, object] = {"name": name, "model": f"{onnx_dir}/unet", "output": "out_sample"}
    if objective == "mse":
        target = randn(tuple(out.shape), seed + 3)
        loss = F.mse_loss(out, target)
        loss.backward()
        case["objective"] = {"kind": "mse", "target": writer.array(f"{name}_target", target), "loss": float(loss)}
    else:
        weight = randn(tuple(out.shape), seed + 3)
        (out * weight).sum().backward()
        case["objective"] = {"kind": "weighted-sum", "weight": writer.array(f"{name}_weight", weight)}
    case["inputs"] = {
        "sample": writer.array(f"{name}_sample", sample.detach()),
        "encoder_hidden_states": writer.array(f"{name}_encoder_hidden_states", context.detach()),
        **({"timestep_cond": writer.array(f"{name}_timestep_cond", extra["timestep_cond"])} if cond else {}),
    }
    case["timestep"] = timesteps
    case["value"] = writer.array(f"{name}_out_sample", out.detach())
    case["grads"] = {
        "sample": writer.array(f"{name}_grad_sample", sample.grad),
        "encoder_hidden_states": writer.array(f"{name}_grad_encoder_hidden_states", context.grad),
    }
    case["forward_check"] = forward_err
    return case


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    writer = RefWriter(OUT)
    unet = models.build_unet(in_channels=4, seed=models.UNET_SEED)
    cases = [
        text_encoder_case(writer),
        unet_case(writer, "unet", unet, "tiny-sd", 4, 1, 16, [500.0], "weighted-sum", 21),
        unet_case(writer, "unet-mse-batch2", unet, "tiny-sd", 4, 2, 8, [981.0, 20.0], "mse", 31),
        unet_case(writer, "unet-inpaint", models.build_unet(in_channels=9, seed=models.INPAINT_UNET_SEED), "tiny-sd-inpaint", 9, 1, 8, [700.0], "weighted-sum", 41),
        unet_case(writer, "unet-lcm", build_lcm_unet(), "tiny-lcm", 4, 1, 8, [259.0], "weighted-sum", 51, cond=True),
    ]
    writer.manifest(
        "refs.json",
        {
            "generator": "tools/make_autodiff_refs.py",
            "conventions": {
                "bin": "raw little-endian float32, C order, shape in the entry",
                "weighted-sum": "objective sum(output * weight): weight is the upstream gradient of the output",
                "mse": "objective torch.nn.functional.mse_loss(output, target), mean over all elements",
                "grads": "torch autograd gradients of the objective with respect to each input",
                "forward_check": "max |ONNX - torch| / max |torch| of the forward output (weights are the fixture's)",
            },
            "cases": cases,
        },
    )
    print(f"wrote {len(writer.files)} files to {OUT}")


if __name__ == "__main__":
    main()
