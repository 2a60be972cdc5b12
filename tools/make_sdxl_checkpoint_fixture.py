"""A tiny single-file SDXL checkpoint (LDM/SGM layout) and diffusers' references on it: test/fixtures/sdxl-checkpoint/.

The checkpoint is a recipe (tools/synthetic_checkpoint.py: seeded hash values, the test writes the byte-identical
.safetensors and checks its SHA-256) with SDXL's structure at tiny widths and the full CLIP vocabulary (so the
tokenizer a converted model carries reads it): conditioner.embedders.0.transformer.text_model.* (CLIP ViT-L style,
quick_gelu), conditioner.embedders.1.model.* (OpenCLIP bigG style: packed in_proj, gelu, ln_final, text_projection
[width, projection], logit_scale), model.diffusion_model.* with label_emb (pooled text + 6 size embeddings) and
transformer depths 1 and 2 per level, first_stage_model.* as SD's.

The torch modules are loaded from that file through diffusers' own single-file converters (convert_ldm_clip_checkpoint
and convert_open_clip_checkpoint with SDXL's prefixes, convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint), after
checking tools/ldm_keys.py inverts them exactly; references: both text encoders' penultimate states and the pooled
text_embeds, the UNet on drawn inputs, the VAE decoder, and StableDiffusionXLPipeline txt2img (Euler) final latents.

Usage: /opt/diffuse-venv/bin/python tools/make_sdxl_checkpoint_fixture.py   (deterministic)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
from diffusers.loaders.single_file_utils import (convert_ldm_clip_checkpoint, convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint,
                                                 convert_open_clip_checkpoint)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures_cases import scheduler_record  # noqa: E402
from fixtures_io import RefWriter  # noqa: E402
from graph_fixture_models import FULL_VOCAB  # noqa: E402
from graph_fixture_refs import draw  # noqa: E402
from gzip_json import write_gzip_text  # noqa: E402
from ldm_keys import big_g_to_sgm, open_clip_to_ldm, sdxl_unet_to_ldm, vae_to_ldm  # noqa: E402
from make_graph_fixtures import a1111_hashes, check_file  # noqa: E402
from sdxl_fixture_models import SDXL_SCHEDULER_CONFIG  # noqa: E402
from synthetic_checkpoint import recipe_for, to_bytes  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "test" / "fixtures" / "sdxl-checkpoint"
TOKENIZER_DIR = REPO / "test" / "fixtures" / "tiny-sd" / "tokenizer"
NAME = "sdxl-tiny"
SEED = 16
TE1, TE2 = "conditioner.embedders.0.transformer.", "conditioner.embedders.1.model."
HIDDEN_1, HIDDEN_2, PROJECTION, TIME_EMBED = 32, 64, 32, 8
PROMPT = "a lighthouse on a cliff at dusk, oil painting"


def text_config(hidden: int, layers: int, act: str, projection: int) -> CLIPTextConfig:
    return CLIPTextConfig(vocab_size=FULL_VOCAB, hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=layers, num_attention_heads=1,
                          max_position_embeddings=77, projection_dim=projection, hidden_act=act, bos_token_id=0, eos_token_id=2, pad_token_id=1)


def text_encoder() -> CLIPTextModel:
    return CLIPTextModel(text_config(HIDDEN_1, 2, "quick_gelu", HIDDEN_1)).eval()


def text_encoder_2() -> CLIPTextModelWithProjection:
    return CLIPTextModelWithProjection(text_config(HIDDEN_2, 3, "gelu", PROJECTION)).eval()


def unet_model() -> UNet2DConditionModel:
    """SDXL's UNet shape at tiny widths: no attention on the first level, transformer depth per level, linear projections,
    64-wide heads (one below 64), text_time added conditioning."""
    return UNet2DConditionModel(sample_size=16, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=2,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                                attention_head_dim=(1, 1), transformer_layers_per_block=(1, 2), use_linear_projection=True,
                                addition_embed_type="text_time", addition_time_embed_dim=TIME_EMBED,
                                projection_class_embeddings_input_dim=6 * TIME_EMBED + PROJECTION, cross_attention_dim=HIDDEN_1 + HIDDEN_2,
                                norm_num_groups=32).eval()


def vae_model() -> AutoencoderKL:
    return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                         block_out_channels=(32, 64), layers_per_block=1, latent_channels=4, norm_num_groups=32, sample_size=32,
                         scaling_factor=0.13025).eval()


def big_g_layout(te2: CLIPTextModelWithProjection, prefix: str) -> dict[str, torch.Tensor]:
    """bigG under `prefix` as SGM stores it (the base's conditioner.embedders.1.model., the refiner's .0.model.)."""
    open_clip = open_clip_to_ldm({k: v for k, v in te2.state_dict().items() if k.startswith("text_model.") and not k.endswith("position_ids")})
    out = {prefix + k.removeprefix("cond_stage_model.model."): v for k, v in open_clip.items()}
    out[prefix + "text_projection"] = torch.zeros(HIDDEN_2, PROJECTION)
    out[prefix + "logit_scale"] = torch.zeros(())
    return out


def layout() -> dict[str, torch.Tensor]:
    unet, vae = unet_model(), vae_model()
    te2 = text_encoder_2()
    out = {**sdxl_unet_to_ldm(unet.state_dict(), dict(unet.config)), **vae_to_ldm(vae.state_dict(), 2)}
    out.update({TE1 + k: v for k, v in text_encoder().state_dict().items() if not k.endswith("position_ids")})
    out.update(big_g_layout(te2, TE2))
    out["alphas_cumprod"] = torch.zeros(1000)
    return out


def load_modules(checkpoint: dict[str, torch.Tensor]) -> dict:
    """Modules through diffusers' converters (float32), after checking the layout above inverts them."""
    fp32 = {k: v.float() for k, v in checkpoint.items()}
    unet, vae, te1, te2 = unet_model(), vae_model(), text_encoder(), text_encoder_2()
    state = {
        "unet": convert_ldm_unet_checkpoint(dict(fp32), dict(unet.config)),
        "vae": convert_ldm_vae_checkpoint(dict(fp32), dict(vae.config)),
        "te1": convert_ldm_clip_checkpoint(dict(fp32), remove_prefix=TE1),
        "te2": convert_open_clip_checkpoint(te2, dict(fp32), prefix=TE2),
    }
    back = {**sdxl_unet_to_ldm(state["unet"], dict(unet.config)), **vae_to_ldm(state["vae"], 2)}
    back.update({TE1 + k: v for k, v in state["te1"].items()})
    back.update(big_g_to_sgm(state["te2"], TE2))
    for k, v in back.items():
        if not torch.equal(v.reshape(fp32[k].shape), fp32[k]):
            raise AssertionError(f"the SDXL layout does not invert diffusers' converters at {k}")
    unused = set(fp32) - set(back)
    if unused != {"alphas_cumprod", TE2 + "logit_scale"}:
        raise AssertionError(f"checkpoint tensors no component reads: {sorted(unused)[:5]}")
    unet.load_state_dict(state["unet"], strict=True)
    vae.load_state_dict(state["vae"], strict=True)
    te1.load_state_dict(state["te1"], strict=True)
    te2.load_state_dict(state["te2"], strict=True)
    return {"unet": unet, "vae": vae, "text_encoder": te1, "text_encoder_2": te2}


def tokenizers() -> tuple[CLIPTokenizer, CLIPTokenizer]:
    return CLIPTokenizer.from_pretrained(str(TOKENIZER_DIR)), CLIPTokenizer.from_pretrained(str(TOKENIZER_DIR), pad_token="!")


@torch.no_grad()
def component_refs(w: RefWriter, m: dict) -> dict:
    tok1, tok2 = tokenizers()
    ids1 = tok1(PROMPT, padding="max_length", max_length=77).input_ids
    ids2 = tok2(PROMPT, padding="max_length", max_length=77).input_ids
    t1 = m["text_encoder"](torch.tensor([ids1]), output_hidden_states=True)
    t2 = m["text_encoder_2"](torch.tensor([ids2]), output_hidden_states=True)
    sample, context = draw(SEED, 1000, [2, 4, 8, 8]), draw(SEED, 1001, [2, 7, HIDDEN_1 + HIDDEN_2])
    text_embeds = draw(SEED, 1002, [2, PROJECTION])
    time_ids = torch.tensor([[32.0, 48.0, 0.0, 0.0, 32.0, 48.0], [64.0, 64.0, 8.0, 4.0, 32.0, 32.0]])
    out = m["unet"](sample, torch.tensor([701.5]), encoder_hidden_states=context, added_cond_kwargs={"text_embeds": text_embeds, "time_ids": time_ids}).sample
    latents = draw(SEED, 2000, [1, 4, 8, 8])
    return {
        "text": {"input_ids": ids1, "input_ids_2": ids2,
                 "penultimate": w.array("text.penultimate", t1.hidden_states[-2]),
                 "penultimate_2": w.array("text_2.penultimate", t2.hidden_states[-2]),
                 "text_embeds": w.array("text_2.text_embeds", t2.text_embeds)},
        "unet": {"sample": {"index": 1000, "shape": [2, 4, 8, 8]}, "context": {"index": 1001, "shape": [2, 7, HIDDEN_1 + HIDDEN_2]},
                 "text_embeds": {"index": 1002, "shape": [2, PROJECTION]}, "time_ids": time_ids.tolist(), "timestep": 701.5,
                 "out_sample": w.array("unet.out", out)},
        "vae": {"latent_sample": {"index": 2000, "shape": [1, 4, 8, 8]}, "sample": w.array("vae.decoded", m["vae"].decode(latents).sample)},
    }


def txt2img_ref(w: RefWriter, m: dict) -> dict:
    tok1, tok2 = tokenizers()
    scheduler = EulerDiscreteScheduler.from_config(SDXL_SCHEDULER_CONFIG)
    pipe = StableDiffusionXLPipeline(vae=m["vae"], text_encoder=m["text_encoder"], text_encoder_2=m["text_encoder_2"], tokenizer=tok1, tokenizer_2=tok2,
                                     unet=m["unet"], scheduler=scheduler, force_zeros_for_empty_prompt=True, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    case = {"name": "euler", "prompt": PROMPT, "negative_prompt": "blurry", "guidance_scale": 5.0, "num_inference_steps": 4, "width": 32, "height": 32, "seed": 5}
    latents = pipe(case["prompt"], negative_prompt=case["negative_prompt"], guidance_scale=case["guidance_scale"], num_inference_steps=case["num_inference_steps"],
                   width=case["width"], height=case["height"], generator=torch.Generator().manual_seed(case["seed"]), output_type="latent").images
    if float(latents.std()) < 1e-3:
        raise AssertionError("constant latents")
    return {**case, "scheduler": scheduler_record("EulerDiscreteScheduler", {}, pipe.scheduler), "final_latents": w.array("txt2img.latents", latents)}


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    recipe = recipe_for(SEED, layout(), "F16")
    data = to_bytes(recipe)
    modules = load_modules(check_file(data, recipe))
    w = RefWriter(OUT)
    write_gzip_text(OUT / f"{NAME}.recipe.json.gz", json.dumps(recipe, separators=(",", ":")))
    w.files.add(f"{NAME}.recipe.json.gz")
    manifest = {"generator": "tools/make_sdxl_checkpoint_fixture.py", "name": NAME, "bytes": len(data), **a1111_hashes(data),
                "conventions": "recipe: tools/synthetic_checkpoint.py; inputs: values(seed, index) in [-1, 1); arrays: float32 .bin",
                "seed": SEED, **component_refs(w, modules), "txt2img": txt2img_ref(w, modules)}
    w.manifest("cases.json", manifest)
    size = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {OUT} ({size / 1e3:.0f} kB; checkpoint {len(data) / 1e6:.2f} MB when written)")


if __name__ == "__main__":
    main()
