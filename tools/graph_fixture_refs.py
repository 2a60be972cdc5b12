"""Reference outputs of the graph-builder fixtures: each component's torch module on fixed inputs, A1111's
v-prediction probe, and a short txt2img with diffusers' StableDiffusionPipeline.

Inputs are drawn from synthetic_checkpoint.values (seeded hash, exact in float32) so the test recomputes them
instead of reading them: only outputs are committed.
"""
from __future__ import annotations

import numpy as np
import torch
from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline
from transformers import CLIPTokenizer

from fixtures_cases import make_scheduler, scheduler_record
from fixtures_io import RefWriter
from fixtures_models import SD15_SCHEDULER_CONFIG
from graph_fixture_models import FULL_VOCAB, Spec
from synthetic_checkpoint import values

PROMPT = "a lighthouse on a cliff at dusk, oil painting"
CONTEXT_TOKENS = 7
# A1111's probe (modules/sd_models_config.py): x = 0.5, t = 999, a 2-token context of 0.5.
PROBE_VALUE, PROBE_T, PROBE_SIZE, PROBE_TOKENS = 0.5, 999.0, 8, 2


def draw(seed: int, index: int, shape: list[int]) -> torch.Tensor:
    """Uniform in [-1, 1), the test's synthesizeInput(seed, index, shape)."""
    n = int(np.prod(shape))
    return torch.from_numpy(values(seed, index, n, 0, 0.0).astype(np.float32)).reshape(shape)


def text_ids(spec: Spec, tokenizer_dir) -> list[int]:
    if spec.vocab == FULL_VOCAB:
        tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer_dir), **({"pad_token": "!"} if spec.family == "sd2" else {}))
        return tokenizer(PROMPT, padding="max_length", max_length=77).input_ids
    # A small vocabulary: its top id stands for end-of-text, where transformers pools.
    body = [int(x) for x in (values(spec.seed, 900, 10, 0, 0.0) * 0.5 + 0.5) * (spec.vocab - 3) + 1]
    ids = [spec.vocab - 2, *body, spec.vocab - 1]
    return ids + [spec.vocab - 1 if spec.family == "sd1" else 0] * (77 - len(ids))


@torch.no_grad()
def text_refs(w: RefWriter, spec: Spec, text, ids: list[int]) -> dict:
    out = text(torch.tensor([ids]), output_hidden_states=True)
    skip2 = text.text_model.final_layer_norm(out.hidden_states[-2])
    return {
        "input_ids": ids,
        "last_hidden_state": w.array(f"{spec.name}.text.last_hidden_state", out.last_hidden_state),
        "pooler_output": w.array(f"{spec.name}.text.pooler_output", out.pooler_output),
        "clip_skip_2": w.array(f"{spec.name}.text.clip_skip_2", skip2),
    }


UNET_CASES = [
    # name, batch, height, width, timestep; 9 x 11 is no multiple of the UNet's downsampling (diffusers' upsample_size).
    ("a", 2, 8, 8, 981.0),
    ("odd", 1, 9, 11, 250.5),
]


@torch.no_grad()
def unet_refs(w: RefWriter, spec: Spec, unet) -> list[dict]:
    cases = []
    for k, (name, batch, h, wd, t) in enumerate(UNET_CASES):
        sample_shape, context_shape = [batch, spec.in_channels, h, wd], [batch, CONTEXT_TOKENS, spec.hidden]
        sample, context = draw(spec.seed, 1000 + 2 * k, sample_shape), draw(spec.seed, 1001 + 2 * k, context_shape)
        out = unet(sample, torch.tensor([t]), encoder_hidden_states=context).sample
        cases.append({"name": name, "sample": {"index": 1000 + 2 * k, "shape": sample_shape}, "context": {"index": 1001 + 2 * k, "shape": context_shape},
                      "timestep": t, "out_sample": w.array(f"{spec.name}.unet.{name}", out)})
    return cases


@torch.no_grad()
def probe_ref(unet, spec: Spec) -> dict:
    x = torch.full((1, 4, PROBE_SIZE, PROBE_SIZE), PROBE_VALUE)
    context = torch.full((1, PROBE_TOKENS, spec.hidden), PROBE_VALUE)
    statistic = float((unet(x, torch.tensor([PROBE_T]), encoder_hidden_states=context).sample - x).mean())
    return {"statistic": statistic, "prediction": "v_prediction" if statistic < -1 else "epsilon"}


@torch.no_grad()
def vae_refs(w: RefWriter, spec: Spec, vae) -> dict:
    factor = 2 ** (len(spec.vae_channels) - 1)
    latents_shape, image_shape = [1, 4, 8, 8], [1, 3, 8 * factor, 8 * factor]
    latents, image = draw(spec.seed, 2000, latents_shape), draw(spec.seed, 2001, image_shape)
    return {
        "decoder": {"latent_sample": {"index": 2000, "shape": latents_shape}, "sample": w.array(f"{spec.name}.vae.decoded", vae.decode(latents).sample)},
        "encoder": {"sample": {"index": 2001, "shape": image_shape},
                    "latent_parameters": w.array(f"{spec.name}.vae.parameters", vae.encode(image).latent_dist.parameters)},
    }


def txt2img_ref(w: RefWriter, spec: Spec, modules: dict, tokenizer_dir) -> dict:
    tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer_dir), **({"pad_token": "!"} if spec.family == "sd2" else {}))
    overrides = {"prediction_type": spec.prediction}
    base = EulerDiscreteScheduler.from_config(SD15_SCHEDULER_CONFIG)
    scheduler = make_scheduler(base.config, "EulerDiscreteScheduler", overrides)
    pipe = StableDiffusionPipeline(vae=modules["vae"], text_encoder=modules["text_encoder"], tokenizer=tokenizer, unet=modules["unet"],
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    case = {"name": f"{spec.name}-euler", "prompt": PROMPT, "negative_prompt": "blurry", "guidance_scale": 7.5, "num_inference_steps": 4,
            "width": 32, "height": 32, "seed": 5}
    latents = pipe(case["prompt"], negative_prompt=case["negative_prompt"], guidance_scale=case["guidance_scale"],
                   num_inference_steps=case["num_inference_steps"], width=case["width"], height=case["height"],
                   generator=torch.Generator().manual_seed(case["seed"]), output_type="latent").images
    if float(latents.std()) < 1e-3:
        raise AssertionError(f"{spec.name}: constant latents")
    return {**case, "scheduler": scheduler_record("EulerDiscreteScheduler", overrides, pipe.scheduler),
            "final_latents": w.array(f"{spec.name}.txt2img.latents", latents)}
