"""Tiny SDXL diffusers (PyTorch) folders, base and refiner, and diffusers' references on them: test/fixtures/sdxl-folder/.

The folders have tiny-sdxl's and tiny-sdxl-refiner's structure (tools/sdxl_fixture_models.py: the same configs, as
save_pretrained writes them, and tiny-sdxl's tokenizers) with recipe weights (tools/synthetic_checkpoint.py: each
component's .safetensors written from a few-KB recipe, byte-identical in the test). The refiner folder is
stabilityai's refiner layout: text_encoder_2/, tokenizer_2/, unet/ (cross-attention on bigG alone, five time ids with
the aesthetic score), vae/, scheduler/, and model_index.json with requires_aesthetics_score; its bigG and VAE are the
base's, as stabilityai's are.

Each folder is written exactly as the test writes it and loaded with diffusers' from_pretrained. References: both text
encoders' penultimate states and bigG's text_embeds, both UNets on drawn inputs, the VAE decoder, a
StableDiffusionXLPipeline txt2img and a base + refiner run (denoising_end / denoising_start, one generator), final
latents.

Usage: /opt/diffuse-venv/bin/python tools/make_sdxl_folder_fixture.py   (deterministic)
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from diffusers import StableDiffusionXLImg2ImgPipeline, StableDiffusionXLPipeline
from transformers import CLIPTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sdxl_fixture_models as models  # noqa: E402
from fixtures_cases import make_scheduler, scheduler_record  # noqa: E402
from fixtures_io import RefWriter  # noqa: E402
from graph_fixture_refs import draw  # noqa: E402
from gzip_json import write_gzip_text  # noqa: E402
from synthetic_checkpoint import recipe_for, to_bytes  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "test" / "fixtures" / "sdxl-folder"
TOKENIZERS = REPO / "test" / "fixtures" / "tiny-sdxl"
SEED = 17
PROMPT = "a lighthouse on a cliff at dusk, oil painting"
NEGATIVE = "blurry"
WEIGHTS = {"text_encoder": "model.safetensors", "text_encoder_2": "model.safetensors", "unet": "diffusion_pytorch_model.safetensors",
           "vae": "diffusion_pytorch_model.safetensors"}
# One value stream seed per component, so the refiner's bigG and VAE are the base's.
COMPONENT_SEEDS = {"text_encoder": 1, "text_encoder_2": 2, "unet": 3, "vae": 4, "refiner_unet": 5}


def tokenizers() -> tuple[CLIPTokenizer, CLIPTokenizer]:
    return CLIPTokenizer.from_pretrained(str(TOKENIZERS / "tokenizer")), CLIPTokenizer.from_pretrained(str(TOKENIZERS / "tokenizer_2"))


def layout(pipe, seeds: dict[str, int]) -> dict:
    """The folder as recipes and configs: save_pretrained's JSON files (tokenizers aside), each component's weights as
    a recipe with its keys and shapes in state_dict order."""
    with tempfile.TemporaryDirectory() as tmp:
        pipe.save_pretrained(tmp, safe_serialization=True)
        configs = {}
        for path in sorted(Path(tmp).rglob("*.json")):
            rel = path.relative_to(tmp).as_posix()
            if not rel.startswith("tokenizer"):
                configs[rel] = json.loads(path.read_text())
    files = {}
    for part, file in WEIGHTS.items():
        module = getattr(pipe, part)
        if module is None:
            continue
        state = {k: v for k, v in module.state_dict().items() if not k.endswith("position_ids")}
        files[f"{part}/{file}"] = {**recipe_for(SEED * 100 + seeds[part], state, "F32"), "metadata": {"format": "pt"}}
    public = {rel: {k: v for k, v in config.items() if not k.startswith("_use") and k != "_name_or_path"} for rel, config in configs.items()}
    return {"files": files, "configs": json.loads(json.dumps(public, default=list))}


def write_folder(dest: Path, folder: dict, tokenizer_parts: tuple[str, ...]) -> None:
    """What test/helpers/synthetic-checkpoint.ts writeDiffusersFolder writes."""
    for rel, recipe in folder["files"].items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(to_bytes(recipe))
    for rel, config in folder["configs"].items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text(json.dumps(config))
    for part in tokenizer_parts:
        shutil.copytree(TOKENIZERS / part, dest / part)


def unet_ref(w: RefWriter, unet, name: str, base_index: int, width: int, time_ids: torch.Tensor) -> dict:
    sample, context = draw(SEED, base_index, [2, 4, 8, 8]), draw(SEED, base_index + 1, [2, 7, width])
    text_embeds = draw(SEED, base_index + 2, [2, models.POOLED])
    with torch.no_grad():
        out = unet(sample, torch.tensor([701.5]), encoder_hidden_states=context, added_cond_kwargs={"text_embeds": text_embeds, "time_ids": time_ids}).sample
    return {"sample": {"index": base_index, "shape": [2, 4, 8, 8]}, "context": {"index": base_index + 1, "shape": [2, 7, width]},
            "text_embeds": {"index": base_index + 2, "shape": [2, models.POOLED]}, "time_ids": time_ids.tolist(), "timestep": 701.5,
            "out_sample": w.array(f"{name}.out", out)}


@torch.no_grad()
def component_refs(w: RefWriter, base, refiner) -> dict:
    ids1 = base.tokenizer(PROMPT, padding="max_length", max_length=77).input_ids
    ids2 = base.tokenizer_2(PROMPT, padding="max_length", max_length=77).input_ids
    t1 = base.text_encoder(torch.tensor([ids1]), output_hidden_states=True)
    t2 = base.text_encoder_2(torch.tensor([ids2]), output_hidden_states=True)
    latents = draw(SEED, 2000, [1, 4, 8, 8])
    return {
        "text": {"input_ids": ids1, "input_ids_2": ids2,
                 "penultimate": w.array("text.penultimate", t1.hidden_states[-2]),
                 "penultimate_2": w.array("text_2.penultimate", t2.hidden_states[-2]),
                 "text_embeds": w.array("text_2.text_embeds", t2.text_embeds)},
        "unet": unet_ref(w, base.unet, "unet", 1000, models.HIDDEN_1 + models.HIDDEN_2,
                         torch.tensor([[32.0, 48.0, 0.0, 0.0, 32.0, 48.0], [64.0, 64.0, 8.0, 4.0, 32.0, 32.0]])),
        "refiner_unet": unet_ref(w, refiner.unet, "refiner-unet", 1100, models.HIDDEN_2,
                                 torch.tensor([[32.0, 48.0, 0.0, 0.0, 6.0], [64.0, 64.0, 8.0, 4.0, 2.5]])),
        "vae": {"latent_sample": {"index": 2000, "shape": [1, 4, 8, 8]}, "sample": w.array("vae.decoded", base.vae.decode(latents).sample)},
    }


def case(name: str, steps: int, seed: int, pipe) -> dict:
    return {"name": name, "prompt": PROMPT, "negative_prompt": NEGATIVE, "guidance_scale": 5.0, "num_inference_steps": steps, "width": 32, "height": 32,
            "seed": seed, "scheduler": scheduler_record("EulerDiscreteScheduler", {}, pipe.scheduler)}


def checked(latents: torch.Tensor, what: str) -> torch.Tensor:
    if not torch.isfinite(latents).all() or float(latents.std()) < 1e-3:
        raise AssertionError(f"{what}: degenerate latents")
    return latents


def txt2img_ref(w: RefWriter, base) -> dict:
    args = {"prompt": PROMPT, "negative_prompt": NEGATIVE, "guidance_scale": 5.0, "num_inference_steps": 4, "width": 32, "height": 32}
    latents = base(**args, generator=torch.Generator().manual_seed(5), output_type="latent").images
    return {**case("euler", 4, 5, base), "final_latents": w.array("txt2img.latents", checked(latents, "txt2img"))}


def refiner_ref(w: RefWriter, base, refiner) -> dict:
    """diffusers' ensemble of experts: the base to denoising_end, the refiner from denoising_start, one generator."""
    switch, steps, seed = 0.8, 10, 15
    generator = torch.Generator().manual_seed(seed)
    args = {"prompt": PROMPT, "negative_prompt": NEGATIVE, "num_inference_steps": steps, "guidance_scale": 5.0, "generator": generator, "output_type": "latent"}
    handed = base(**args, width=32, height=32, denoising_end=switch).images
    final = refiner(**args, image=handed, denoising_start=switch).images
    return {**case("euler-0.8", steps, seed, base), "switch": switch, "aesthetic_score": 6.0, "negative_aesthetic_score": 2.5,
            "final_latents": w.array("refiner.latents", checked(final, "base + refiner"))}


def main() -> None:
    torch.set_num_threads(1)
    tok1, tok2 = tokenizers()
    built_base = StableDiffusionXLPipeline(vae=models.build_vae(), text_encoder=models.build_text_encoder(), text_encoder_2=models.build_text_encoder_2(),
                                           tokenizer=tok1, tokenizer_2=tok2, unet=models.build_unet(models.UNET_SEED), scheduler=models.scheduler(),
                                           force_zeros_for_empty_prompt=True, add_watermarker=False)
    built_refiner = models.build_refiner(built_base)
    folders = {
        "base": layout(built_base, COMPONENT_SEEDS),
        "refiner": layout(built_refiner, {**COMPONENT_SEEDS, "unet": COMPONENT_SEEDS["refiner_unet"]}),
    }
    w = RefWriter(OUT)
    with tempfile.TemporaryDirectory() as tmp:
        write_folder(Path(tmp) / "base", folders["base"], ("tokenizer", "tokenizer_2"))
        write_folder(Path(tmp) / "refiner", folders["refiner"], ("tokenizer_2",))
        base = StableDiffusionXLPipeline.from_pretrained(Path(tmp) / "base", add_watermarker=False)
        refiner = StableDiffusionXLImg2ImgPipeline.from_pretrained(Path(tmp) / "refiner", add_watermarker=False)
        for pipe in (base, refiner):
            pipe.set_progress_bar_config(disable=True)
            pipe.scheduler = make_scheduler(models.SDXL_SCHEDULER_CONFIG, "EulerDiscreteScheduler", {})
        if base.text_encoder_2.text_model.encoder.layers[0].mlp.fc1.weight.dtype != torch.float32 or refiner.text_encoder is not None:
            raise AssertionError("the folders did not load as written")
        manifest = {"generator": "tools/make_sdxl_folder_fixture.py", "seed": SEED,
                    "conventions": "folders: <name>.diffusers.json.gz (recipes: tools/synthetic_checkpoint.py) + tiny-sdxl's tokenizers; "
                                   "inputs: values(seed, index) in [-1, 1); arrays: float32 .bin",
                    **component_refs(w, base, refiner), "txt2img": txt2img_ref(w, base), "refiner": refiner_ref(w, base, refiner)}
    for name, folder in folders.items():
        write_gzip_text(OUT / f"{name}.diffusers.json.gz", json.dumps(folder, separators=(",", ":")))
        w.files.add(f"{name}.diffusers.json.gz")
    w.manifest("cases.json", manifest)
    size = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {OUT} ({size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
