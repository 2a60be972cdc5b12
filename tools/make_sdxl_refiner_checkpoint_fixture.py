"""A tiny single-file SDXL refiner (SGM layout) and diffusers' references on it: test/fixtures/sdxl-refiner-checkpoint/.

The refiner is a recipe (tools/synthetic_checkpoint.py; the test writes the byte-identical .safetensors and checks its
SHA-256) with the refiner's structure at the widths of tools/make_sdxl_checkpoint_fixture.py's base: OpenCLIP bigG alone
as conditioner.embedders.0.model.* (with text_projection), model.diffusion_model.* attending to bigG's states only, its
label_emb reading the pooled text and five embedded numbers (original size, crop, aesthetic score), first_stage_model.*.

diffusers loads it with StableDiffusionXLImg2ImgPipeline.from_single_file, given the tiny configs as `config` (a folder
save_pretrained wrote from the same structure: the single-file loader takes the architecture from there and the
weights, through its own converters, from the file); the weights it loads are checked against the file's tensors
(tools/ldm_keys.py inverts diffusers' converters). References: bigG's penultimate states and pooled text_embeds, the
UNet on drawn inputs with five time ids, and the ensemble of experts with tools/make_sdxl_checkpoint_fixture.py's
single-file base (StableDiffusionXLPipeline to denoising_end 0.8, then the refiner from denoising_start 0.8; Euler,
10 steps, CFG 5, aesthetic scores 6 / 2.5): final latents.

Usage: /opt/diffuse-venv/bin/python tools/make_sdxl_refiner_checkpoint_fixture.py   (deterministic)
"""
from __future__ import annotations

import gzip
import json
import sys
import tempfile
from pathlib import Path

import torch
from diffusers import EulerDiscreteScheduler, StableDiffusionXLImg2ImgPipeline, StableDiffusionXLPipeline, UNet2DConditionModel

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_sdxl_checkpoint_fixture as base  # noqa: E402
from fixtures_cases import scheduler_record  # noqa: E402
from fixtures_io import RefWriter  # noqa: E402
from graph_fixture_refs import draw  # noqa: E402
from gzip_json import write_gzip_text  # noqa: E402
from ldm_keys import big_g_to_sgm, sdxl_unet_to_ldm, vae_to_ldm  # noqa: E402
from make_graph_fixtures import a1111_hashes, check_file  # noqa: E402
from sdxl_fixture_models import SDXL_SCHEDULER_CONFIG  # noqa: E402
from synthetic_checkpoint import recipe_for, to_bytes  # noqa: E402

OUT = base.REPO / "test" / "fixtures" / "sdxl-refiner-checkpoint"
BASE_DIR = base.REPO / "test" / "fixtures" / "sdxl-checkpoint"
NAME = "sdxl-refiner-tiny"
SEED = 17
TE = "conditioner.embedders.0.model."
HIDDEN, PROJECTION, TIME_EMBED = base.HIDDEN_2, base.PROJECTION, base.TIME_EMBED
PROMPT, NEGATIVE = base.PROMPT, "blurry"


def unet_model() -> UNet2DConditionModel:
    """The base's tiny UNet shape, attending to bigG alone and reading five time ids (the refiner's)."""
    return UNet2DConditionModel(sample_size=16, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=2,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                                attention_head_dim=(1, 1), transformer_layers_per_block=(1, 2), use_linear_projection=True,
                                addition_embed_type="text_time", addition_time_embed_dim=TIME_EMBED,
                                projection_class_embeddings_input_dim=5 * TIME_EMBED + PROJECTION, cross_attention_dim=HIDDEN,
                                norm_num_groups=32).eval()


def layout() -> dict[str, torch.Tensor]:
    unet, vae, te = unet_model(), base.vae_model(), base.text_encoder_2()
    out = {**sdxl_unet_to_ldm(unet.state_dict(), dict(unet.config)), **vae_to_ldm(vae.state_dict(), 2), **base.big_g_layout(te, TE)}
    out["alphas_cumprod"] = torch.zeros(1000)
    return out


def tokenizer_2():
    return base.tokenizers()[1]


def scheduler() -> EulerDiscreteScheduler:
    return EulerDiscreteScheduler.from_config(SDXL_SCHEDULER_CONFIG)


def load_refiner(path: Path, checkpoint: dict[str, torch.Tensor]) -> StableDiffusionXLImg2ImgPipeline:
    """from_single_file with the tiny configs, then every weight it loaded checked against the file's tensors."""
    with tempfile.TemporaryDirectory() as tmp:
        StableDiffusionXLImg2ImgPipeline(vae=base.vae_model(), text_encoder=None, text_encoder_2=base.text_encoder_2(), tokenizer=None,
                                         tokenizer_2=tokenizer_2(), unet=unet_model(), scheduler=scheduler(), requires_aesthetics_score=True,
                                         force_zeros_for_empty_prompt=False, add_watermarker=False).save_pretrained(tmp)
        pipe = StableDiffusionXLImg2ImgPipeline.from_single_file(str(path), config=tmp, torch_dtype=torch.float32, add_watermarker=False)
    fp32 = {k: v.float() for k, v in checkpoint.items()}
    back = {**sdxl_unet_to_ldm(pipe.unet.state_dict(), dict(pipe.unet.config)), **vae_to_ldm(pipe.vae.state_dict(), 2)}
    back.update(big_g_to_sgm(pipe.text_encoder_2.state_dict(), TE))
    for k, v in back.items():
        if not torch.equal(v.reshape(fp32[k].shape), fp32[k]):
            raise AssertionError(f"from_single_file loaded {k} other than the file holds")
    if set(fp32) - set(back) != {"alphas_cumprod", TE + "logit_scale"}:
        raise AssertionError(f"checkpoint tensors no component reads: {sorted(set(fp32) - set(back))[:5]}")
    if pipe.text_encoder is not None or not pipe.config.requires_aesthetics_score:
        raise AssertionError("from_single_file did not make a refiner pipeline")
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(torch.float32)


def base_pipeline() -> StableDiffusionXLPipeline:
    """tools/make_sdxl_checkpoint_fixture.py's base, from its recipe."""
    recipe = json.loads(gzip.decompress((BASE_DIR / f"{base.NAME}.recipe.json.gz").read_bytes()))
    m = base.load_modules(check_file(to_bytes(recipe), recipe))
    tok1, tok2 = base.tokenizers()
    pipe = StableDiffusionXLPipeline(vae=m["vae"], text_encoder=m["text_encoder"], text_encoder_2=m["text_encoder_2"], tokenizer=tok1, tokenizer_2=tok2,
                                     unet=m["unet"], scheduler=scheduler(), force_zeros_for_empty_prompt=True, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@torch.no_grad()
def component_refs(w: RefWriter, refiner: StableDiffusionXLImg2ImgPipeline) -> dict:
    ids = refiner.tokenizer_2(PROMPT, padding="max_length", max_length=77).input_ids
    t = refiner.text_encoder_2(torch.tensor([ids]), output_hidden_states=True)
    sample, context, text_embeds = draw(SEED, 1000, [2, 4, 8, 8]), draw(SEED, 1001, [2, 7, HIDDEN]), draw(SEED, 1002, [2, PROJECTION])
    time_ids = torch.tensor([[32.0, 48.0, 0.0, 0.0, 6.0], [64.0, 64.0, 8.0, 4.0, 2.5]])
    out = refiner.unet(sample, torch.tensor([701.5]), encoder_hidden_states=context, added_cond_kwargs={"text_embeds": text_embeds, "time_ids": time_ids}).sample
    return {
        "text": {"input_ids_2": ids, "penultimate_2": w.array("text_2.penultimate", t.hidden_states[-2]), "text_embeds": w.array("text_2.text_embeds", t.text_embeds)},
        "unet": {"sample": {"index": 1000, "shape": [2, 4, 8, 8]}, "context": {"index": 1001, "shape": [2, 7, HIDDEN]},
                 "text_embeds": {"index": 1002, "shape": [2, PROJECTION]}, "time_ids": time_ids.tolist(), "timestep": 701.5,
                 "out_sample": w.array("unet.out", out)},
    }


def ensemble_ref(w: RefWriter, pipe: StableDiffusionXLPipeline, refiner: StableDiffusionXLImg2ImgPipeline) -> dict:
    """diffusers' ensemble of experts: the base to denoising_end, the refiner from denoising_start, one generator."""
    switch, steps, seed = 0.8, 10, 15
    generator = torch.Generator().manual_seed(seed)
    args = {"prompt": PROMPT, "negative_prompt": NEGATIVE, "num_inference_steps": steps, "guidance_scale": 5.0, "generator": generator, "output_type": "latent"}
    handed = pipe(**args, width=32, height=32, denoising_end=switch).images
    final = refiner(**args, image=handed, denoising_start=switch, aesthetic_score=6.0, negative_aesthetic_score=2.5).images
    if not torch.isfinite(final).all() or float(final.std()) < 1e-3:
        raise AssertionError("base + refiner: degenerate latents")
    return {"name": "euler-0.8", "prompt": PROMPT, "negative_prompt": NEGATIVE, "guidance_scale": 5.0, "num_inference_steps": steps, "width": 32, "height": 32,
            "seed": seed, "scheduler": scheduler_record("EulerDiscreteScheduler", {}, pipe.scheduler), "switch": switch,
            "aesthetic_score": 6.0, "negative_aesthetic_score": 2.5, "final_latents": w.array("refiner.latents", final)}


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    recipe = recipe_for(SEED, layout(), "F16")
    data = to_bytes(recipe)
    checkpoint = check_file(data, recipe)
    w = RefWriter(OUT)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{NAME}.safetensors"
        path.write_bytes(data)
        refiner = load_refiner(path, checkpoint)
    write_gzip_text(OUT / f"{NAME}.recipe.json.gz", json.dumps(recipe, separators=(",", ":")))
    w.files.add(f"{NAME}.recipe.json.gz")
    manifest = {"generator": "tools/make_sdxl_refiner_checkpoint_fixture.py", "name": NAME, "base": base.NAME, "bytes": len(data), **a1111_hashes(data),
                "conventions": "recipe: tools/synthetic_checkpoint.py; inputs: values(seed, index) in [-1, 1); arrays: float32 .bin",
                "seed": SEED, **component_refs(w, refiner), "refiner": ensemble_ref(w, base_pipeline(), refiner)}
    w.manifest("cases.json", manifest)
    size = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {OUT} ({size / 1e3:.0f} kB; checkpoint {len(data) / 1e6:.2f} MB when written)")


if __name__ == "__main__":
    main()
