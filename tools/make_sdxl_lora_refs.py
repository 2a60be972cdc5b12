"""SDXL LoRA references on tiny-sdxl: test/fixtures/sdxl-lora/.

Usage: /opt/diffuse-venv/bin/python tools/make_sdxl_lora_refs.py (after tools/make_sdxl_fixture.py; under a minute)
On test/fixtures/tiny-sdxl (optimum's export; the torch modules rebuilt from tools/sdxl_fixture_models.py's seeds and
checked against the ONNX graphs first), two LoRA files with seeded float16 values and the final latents of a 4-step
Euler txt2img with diffusers' StableDiffusionXLPipeline after each is loaded and fused:
- kohya SDXL LoRA as sd-scripts saves it: UNet modules in SGM names (lora_unet_input_blocks_4_1_..., middle_block,
  output_blocks; resnet in_layers_2/out_layers_3/emb_layers_1/skip_connection, op, upsampler conv as LoCon 3x3 downs),
  lora_te1_ and lora_te2_ for the two text encoders, one alpha; written here from the diffusers module names by the
  inverse of diffusers' _maybe_map_sgm_blocks_to_diffusers, and checked to land on exactly those modules once
  diffusers has loaded it (the set of fused weights that changed);
- diffusers/PEFT LoRA (unet., text_encoder., text_encoder_2.) made by peft and saved by
  StableDiffusionXLPipeline.save_lora_weights.
Both read by load_lora_weights and merged by fuse_lora (lora_scale = the multiplier; per component for te vs UNet).
Deterministic: fixed seeds, single-threaded torch.
"""
from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from diffusers import StableDiffusionXLPipeline
from safetensors.torch import load_file, save

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fixtures_cases as cases  # noqa: E402
import sdxl_fixture_models as models  # noqa: E402
from fixtures_io import RefWriter  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BASE = REPO / "test" / "fixtures" / "tiny-sdxl"
OUT = REPO / "test" / "fixtures" / "sdxl-lora"
CASE = {"prompt": "a photo of an astronaut riding a horse", "negative_prompt": "blurry", "guidance_scale": 5.0, "num_inference_steps": 4,
        "width": 32, "height": 32, "seed": 7}

UNET_LINEAR = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0", "ff.net.0.proj", "ff.net.2")
UNET_OTHER = ("proj_in", "proj_out", "conv1", "conv2", "conv_shortcut", "time_emb_proj", "downsamplers.0.conv", "upsamplers.0.conv")
TE_LINEAR = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "mlp.fc1", "mlp.fc2")
RESNET_PARTS = {"conv1": "in_layers_2", "conv2": "out_layers_3", "time_emb_proj": "emb_layers_1", "conv_shortcut": "skip_connection"}


def pipeline() -> StableDiffusionXLPipeline:
    pipe = models.build_base(BASE)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def check_against_onnx(pipe) -> float:
    """The rebuilt UNet equals the fixture's graph on one call, so the references describe the fixture."""
    g = torch.Generator().manual_seed(3)
    sample, context = torch.randn(1, 4, 16, 16, generator=g), torch.randn(1, 77, 40, generator=g)
    text_embeds, time_ids = torch.randn(1, models.POOLED, generator=g), torch.tensor([[32.0, 32.0, 0.0, 0.0, 32.0, 32.0]])
    session = ort.InferenceSession(str(BASE / "unet" / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"sample": sample.numpy(), "timestep": np.array([500.0], dtype=np.float32), "encoder_hidden_states": context.numpy(),
                             "text_embeds": text_embeds.numpy(), "time_ids": time_ids.numpy()})[0]
    with torch.no_grad():
        want = pipe.unet(sample, torch.tensor(500.0), context, added_cond_kwargs={"text_embeds": text_embeds, "time_ids": time_ids}).sample
    err = float(np.abs(got - want.numpy()).max())
    if err > 1e-4:
        raise AssertionError(f"rebuilt UNet differs from test/fixtures/tiny-sdxl by {err}")
    return err


def latents(pipe) -> torch.Tensor:
    out = pipe(CASE["prompt"], negative_prompt=CASE["negative_prompt"], guidance_scale=CASE["guidance_scale"], num_inference_steps=CASE["num_inference_steps"],
               width=CASE["width"], height=CASE["height"], generator=torch.Generator().manual_seed(CASE["seed"]), output_type="latent").images
    if float(out.std()) < 1e-3:
        raise AssertionError("constant latents")
    return out


def sgm_name(module: str, layers_per_block: int, attention_up_blocks: set[int]) -> str:
    """A diffusers UNet module path in SGM's (sd-scripts') numbering, the inverse of _maybe_map_sgm_blocks_to_diffusers."""
    per_level = layers_per_block + 1
    m = re.match(r"down_blocks\.(\d+)\.(attentions|resnets)\.(\d+)\.(.+)$", module)
    if m:
        rest = RESNET_PARTS.get(m[4], m[4]) if m[2] == "resnets" else m[4]
        return f"input_blocks.{1 + int(m[1]) * per_level + int(m[3])}.{1 if m[2] == 'attentions' else 0}.{rest}"
    m = re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv$", module)
    if m:
        return f"input_blocks.{(int(m[1]) + 1) * per_level}.0.op"
    m = re.match(r"mid_block\.(attentions|resnets)\.(\d+)\.(.+)$", module)
    if m:
        rest = RESNET_PARTS.get(m[3], m[3]) if m[1] == "resnets" else m[3]
        return f"middle_block.{1 if m[1] == 'attentions' else int(m[2]) * 2}.{rest}"
    m = re.match(r"up_blocks\.(\d+)\.(attentions|resnets)\.(\d+)\.(.+)$", module)
    if m:
        rest = RESNET_PARTS.get(m[4], m[4]) if m[2] == "resnets" else m[4]
        return f"output_blocks.{int(m[1]) * per_level + int(m[3])}.{1 if m[2] == 'attentions' else 0}.{rest}"
    m = re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv$", module)
    if m:
        block = int(m[1])
        return f"output_blocks.{block * per_level + layers_per_block}.{2 if block in attention_up_blocks else 1}.conv"
    raise ValueError(f"no SGM name for {module}")


def targets(pipe) -> dict[str, tuple[str, str, torch.nn.Module]]:
    """kohya name (SGM for the UNet) -> (component, module path, module) for the layers the kohya file patches."""
    unet = pipe.unet
    up_attn = {i for i, b in enumerate(unet.up_blocks) if getattr(b, "attentions", None)}
    out = {}
    for name, m in unet.named_modules():
        if name.startswith(("down_blocks", "mid_block", "up_blocks")) and name.endswith(UNET_LINEAR + UNET_OTHER):
            out["lora_unet_" + sgm_name(name, unet.config.layers_per_block, up_attn).replace(".", "_")] = ("unet", name, m)
    for prefix, component in (("lora_te1_", "text_encoder"), ("lora_te2_", "text_encoder_2")):
        for name, m in getattr(pipe, component).named_modules():
            if name.endswith(TE_LINEAR):
                out[prefix + name.replace(".", "_")] = (component, name, m)
    return out


def rand(g: torch.Generator, *shape: int, scale: float = 0.3) -> torch.Tensor:
    """Uniform values exactly representable in float16 (the files store F16, as most shared LoRAs do)."""
    return ((torch.rand(*shape, generator=g) * 2 - 1) * scale).half().float()


def kohya_sdxl(pipe, g: torch.Generator) -> dict[str, torch.Tensor]:
    """Rank 4; 3x3 convolutions get a 3x3 down and a 1x1 up (LoCon); one alpha for every module, as sd-scripts writes it."""
    sd = {}
    for key, (_, _, m) in sorted(targets(pipe).items()):
        if isinstance(m, torch.nn.Conv2d):
            sd[f"{key}.lora_down.weight"] = rand(g, 4, m.in_channels, *m.kernel_size)
            sd[f"{key}.lora_up.weight"] = rand(g, m.out_channels, 4, 1, 1)
        else:
            sd[f"{key}.lora_down.weight"] = rand(g, 4, m.in_features)
            sd[f"{key}.lora_up.weight"] = rand(g, m.out_features, 4)
        sd[f"{key}.alpha"] = torch.tensor(2.0)
    return sd


def peft_sdxl(pipe, g: torch.Generator, folder: Path) -> Path:
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    pipe.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False, target_modules=["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out"]))
    for text in (pipe.text_encoder, pipe.text_encoder_2):
        text.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False, target_modules=["q_proj", "k_proj", "v_proj", "out_proj"]))
    for model in (pipe.unet, pipe.text_encoder, pipe.text_encoder_2):
        for name, p in model.named_parameters():
            if "lora_" in name:
                with torch.no_grad():
                    p.copy_(rand(g, *p.shape))
    StableDiffusionXLPipeline.save_lora_weights(str(folder), unet_lora_layers=get_peft_model_state_dict(pipe.unet),
                                                text_encoder_lora_layers=get_peft_model_state_dict(pipe.text_encoder),
                                                text_encoder_2_lora_layers=get_peft_model_state_dict(pipe.text_encoder_2), safe_serialization=True)
    return folder / "pytorch_lora_weights.safetensors"


def fused(path: Path, te: float, unet: float) -> StableDiffusionXLPipeline:
    pipe = pipeline()
    pipe.load_lora_weights(str(path), adapter_name="x")
    pipe.fuse_lora(components=["text_encoder", "text_encoder_2"], lora_scale=te, adapter_names=["x"])
    pipe.fuse_lora(components=["unet"], lora_scale=unet, adapter_names=["x"])
    pipe.unload_lora_weights()
    return pipe


def check_landing(path: Path) -> int:
    """Every module of the kohya file, and nothing else, changed once diffusers fused it: its SGM names map where meant."""
    plain, merged = pipeline(), fused(path, 1.0, 1.0)
    meant = {(component, name) for component, name, _ in targets(plain).values()}
    changed = set()
    for component in ("unet", "text_encoder", "text_encoder_2"):
        after = dict(getattr(merged, component).named_modules())
        for name, m in getattr(plain, component).named_modules():
            w = getattr(m, "weight", None)
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)) and not torch.equal(w, after[name].weight):
                changed.add((component, name))
    if changed != meant:
        raise AssertionError(f"kohya SDXL names landed elsewhere: missing {sorted(meant - changed)[:3]}, extra {sorted(changed - meant)[:3]}")
    return len(changed)


def addnet_hash(data: bytes) -> str:
    n = int.from_bytes(data[:8], "little")
    return hashlib.sha256(data[8 + n:]).hexdigest()[:12]


def main() -> None:
    import diffusers

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    onnx_error = check_against_onnx(pipeline())
    w = RefWriter(OUT)
    g = torch.Generator().manual_seed(4321)
    record = cases.scheduler_record("EulerDiscreteScheduler", {}, pipeline().scheduler)
    out = [{**CASE, "name": "none", "final_latents": w.array("none.latents", latents(pipeline()))}]

    kohya = {k: v.half() for k, v in kohya_sdxl(pipeline(), g).items()}
    (OUT / "kohya_sdxl.safetensors").write_bytes(save(kohya, metadata={"ss_network_module": "networks.lora", "ss_base_model_version": "sdxl_base_v1-0"}))
    w.files.add("kohya_sdxl.safetensors")
    landed = check_landing(OUT / "kohya_sdxl.safetensors")
    for name, te, unet in (("kohya_sdxl-0.8", 0.8, 0.8), ("kohya_sdxl-te1-unet0.5", 1.0, 0.5)):
        out.append({**CASE, "name": name, "lora": "kohya_sdxl", "te": te, "unet": unet, "final_latents": w.array(f"{name}.latents", latents(fused(OUT / "kohya_sdxl.safetensors", te, unet)))})

    scratch = Path("/tmp/diffuse-sdxl-lora-refs")
    scratch.mkdir(exist_ok=True)
    peft_file = peft_sdxl(pipeline(), g, scratch)
    (OUT / "peft_sdxl.safetensors").write_bytes(save({k: v.half() for k, v in load_file(str(peft_file)).items()}))
    w.files.add("peft_sdxl.safetensors")
    out.append({**CASE, "name": "peft_sdxl-0.7", "lora": "peft_sdxl", "te": 0.7, "unet": 0.7, "final_latents": w.array("peft_sdxl-0.7.latents", latents(fused(OUT / "peft_sdxl.safetensors", 0.7, 0.7)))})

    hashes = {f: addnet_hash((OUT / f"{f}.safetensors").read_bytes()) for f in ("kohya_sdxl", "peft_sdxl")}
    w.manifest("cases.json", {
        "generator": "tools/make_sdxl_lora_refs.py",
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__},
        "model": "test/fixtures/tiny-sdxl (torch modules rebuilt from tools/sdxl_fixture_models.py)",
        "rebuilt_unet_vs_onnx_max_abs": onnx_error,
        "kohya_modules_landed": landed,
        "hashes": hashes,
        "conventions": "load_lora_weights + fuse_lora(lora_scale=te on both text encoders, unet on the UNet); Euler, the scheduler below; final latents before / scaling_factor",
        "scheduler": record,
        "cases": out,
    })
    print(f"SDXL LoRA refs: {len(out)} cases, kohya modules landed {landed}, rebuilt UNet vs ONNX {onnx_error:.1e}")


if __name__ == "__main__":
    main()
