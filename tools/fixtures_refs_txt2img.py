"""Reference outputs of the torch StableDiffusionPipeline (the truth) on the tiny-sd model.

Each case is run from its seed alone (generator=torch.Generator('cpu').manual_seed(seed), latents=None), and every
randn the run draws is recorded: the initial latents the pipeline drew and, for stochastic schedulers, each step's
noise. Deterministic cases are re-run with latents= passed explicitly and must give bit-identical results; every case
is also re-run through the pipeline's own decode (output_type "np") to prove the saved image is what diffusers returns.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

import fixtures_cases as cases
from fixtures_io import RefWriter, record_randn

ASTRONAUT = "a photo of an astronaut riding a horse on mars"
NEGATIVE = "blurry, low quality"
NATIVE = (32, 32)  # (width, height) in pixels
WIDE = (48, 32)

TEXT_ENCODER_PROMPTS = [
    "",
    ASTRONAUT,
    "A Red Cube, on a TABLE!!  (oil painting:1.2)",
    "café crème — naïve façade, 東京 ☕",
    " ".join(["a very long prompt that goes past the seventy seven token limit of clip"] * 8),
]


@dataclass(frozen=True)
class Txt2ImgCase:
    name: str
    scheduler: str
    steps: int
    seed: int
    overrides: dict[str, object] = field(default_factory=dict)
    guidance_scale: float = 7.5
    prompt: str | list[str] = ASTRONAUT
    negative_prompt: str | list[str] | None = None
    size: tuple[int, int] = NATIVE
    num_images_per_prompt: int = 1
    eta: float = 0.0
    guidance_rescale: float = 0.0


KARRAS = {"use_karras_sigmas": True}
V_PRED = {"prediction_type": "v_prediction"}

CASES: list[Txt2ImgCase] = [
    Txt2ImgCase("pndm", "PNDMScheduler", 6, 0),
    Txt2ImgCase("pndm-wide-cfg3", "PNDMScheduler", 6, 1, guidance_scale=3.0, size=WIDE, negative_prompt=NEGATIVE),
    Txt2ImgCase("ddim", "DDIMScheduler", 8, 2),
    Txt2ImgCase("ddim-eta", "DDIMScheduler", 6, 3, eta=0.5),
    Txt2ImgCase("euler", "EulerDiscreteScheduler", 8, 4, negative_prompt=NEGATIVE),
    Txt2ImgCase("euler-karras", "EulerDiscreteScheduler", 8, 5, overrides=KARRAS),
    Txt2ImgCase(
        "euler-trailing-nocfg", "EulerDiscreteScheduler", 6, 6,
        overrides={"timestep_spacing": "trailing"}, guidance_scale=1.0, negative_prompt=NEGATIVE,
    ),
    Txt2ImgCase("euler-linspace-wide", "EulerDiscreteScheduler", 6, 7, overrides={"timestep_spacing": "linspace"}, size=WIDE),
    Txt2ImgCase("euler-a", "EulerAncestralDiscreteScheduler", 8, 8),
    Txt2ImgCase("euler-a-batch2-wide", "EulerAncestralDiscreteScheduler", 6, 9, size=WIDE, num_images_per_prompt=2),
    Txt2ImgCase("dpmpp-2m-karras", "DPMSolverMultistepScheduler", 8, 10, overrides=KARRAS, negative_prompt=NEGATIVE),
    Txt2ImgCase("dpmpp-2m-wide", "DPMSolverMultistepScheduler", 8, 11, size=WIDE),
    Txt2ImgCase(
        "dpmpp-2m-sde-karras", "DPMSolverMultistepScheduler", 8, 12,
        overrides={"algorithm_type": "sde-dpmsolver++", **KARRAS},
    ),
    Txt2ImgCase("dpm-singlestep", "DPMSolverSinglestepScheduler", 8, 13),
    Txt2ImgCase("unipc", "UniPCMultistepScheduler", 8, 14),
    Txt2ImgCase("unipc-batch-prompts", "UniPCMultistepScheduler", 6, 15, prompt=[ASTRONAUT, "a red cube"],
                negative_prompt=[NEGATIVE, ""]),
    Txt2ImgCase("deis", "DEISMultistepScheduler", 8, 16),
    Txt2ImgCase("lms", "LMSDiscreteScheduler", 8, 17),
    Txt2ImgCase("lms-karras", "LMSDiscreteScheduler", 8, 18, overrides=KARRAS),
    Txt2ImgCase("heun", "HeunDiscreteScheduler", 5, 19),
    Txt2ImgCase("kdpm2", "KDPM2DiscreteScheduler", 5, 20),
    Txt2ImgCase("kdpm2-a", "KDPM2AncestralDiscreteScheduler", 5, 21),
    Txt2ImgCase("lcm", "LCMScheduler", 4, 22, guidance_scale=1.0),
    Txt2ImgCase("ddpm", "DDPMScheduler", 10, 23),
    # Seeds past 2**32 exercise the full 64-bit seeding of torch's CPU generator.
    Txt2ImgCase("euler-bigseed", "EulerDiscreteScheduler", 4, 4294967297 + 12345),
    Txt2ImgCase("euler-v", "EulerDiscreteScheduler", 6, 24, overrides=V_PRED),
    Txt2ImgCase("ddim-v", "DDIMScheduler", 6, 25, overrides=V_PRED),
    Txt2ImgCase("dpmpp-2m-karras-v", "DPMSolverMultistepScheduler", 6, 26, overrides={**V_PRED, **KARRAS}),
    # SD 2.x "zero terminal SNR" recipe: v-prediction, rescaled betas, trailing spacing, guidance rescale.
    Txt2ImgCase(
        "ddim-v-zsnr-rescale", "DDIMScheduler", 6, 27,
        overrides={**V_PRED, "rescale_betas_zero_snr": True, "timestep_spacing": "trailing"},
        guidance_rescale=0.7,
    ),
]


def _text_encoder_refs(pipe, writer: RefWriter) -> list[dict[str, object]]:
    refs = []
    for i, prompt in enumerate(TEXT_ENCODER_PROMPTS):
        ids = cases.token_ids(pipe, prompt)
        with torch.no_grad():
            out = pipe.text_encoder(torch.tensor([ids]))
        refs.append({
            "name": f"prompt{i}",
            "prompt": prompt,
            "input_ids": ids,
            "last_hidden_state": writer.array(f"text-encoder.prompt{i}.last-hidden-state", out.last_hidden_state),
            "pooler_output": writer.array(f"text-encoder.prompt{i}.pooler-output", out.pooler_output),
        })
    return refs


def _call(pipe, case: Txt2ImgCase, generator: torch.Generator, latents: torch.Tensor | None, output_type: str):
    width, height = case.size
    return pipe(
        prompt=case.prompt,
        negative_prompt=case.negative_prompt,
        guidance_scale=case.guidance_scale,
        num_inference_steps=case.steps,
        width=width,
        height=height,
        num_images_per_prompt=case.num_images_per_prompt,
        eta=case.eta,
        guidance_rescale=case.guidance_rescale,
        generator=generator,
        latents=latents,
        output_type=output_type,
    ).images


def _run_case(pipe, base_config, case: Txt2ImgCase, writer: RefWriter) -> dict[str, object]:
    name = f"txt2img.{case.name}"
    pipe.scheduler = cases.make_scheduler(base_config, case.scheduler, case.overrides)
    scheduler_module = type(pipe.scheduler).__module__
    with record_randn(cases.PIPELINE_MODULES["txt2img"], scheduler_module) as draws:
        final = _call(pipe, case, torch.Generator("cpu").manual_seed(case.seed), None, "latent")
    other, step_noise = cases.split_draws(name, draws, scheduler_module)
    if len(other) != 1:
        raise AssertionError(f"{name}: expected one initial-latents draw, got {len(other)}")
    initial = other[0][1]
    # Recover the same latents by drawing them ourselves: that is all the TS side has to do from the seed.
    redrawn = torch.randn(initial.shape, generator=torch.Generator("cpu").manual_seed(case.seed))
    cases.assert_same(name, "pipeline latents vs own randn", initial, redrawn)

    if not step_noise:
        again = _call(pipe, case, torch.Generator("cpu").manual_seed(case.seed), initial.clone(), "latent")
        cases.assert_same(name, "explicit-latents run vs seed-only run", again, final)
    record = {
        "name": case.name,
        "prompt": case.prompt,
        "negative_prompt": case.negative_prompt,
        "guidance_scale": case.guidance_scale,
        "guidance_rescale": case.guidance_rescale,
        "eta": case.eta,
        "num_inference_steps": case.steps,
        "width": case.size[0],
        "height": case.size[1],
        "num_images_per_prompt": case.num_images_per_prompt,
        "seed": case.seed,
        "stochastic": bool(step_noise),
        "scheduler": cases.scheduler_record(case.scheduler, case.overrides, pipe.scheduler),
        "initial_latents": writer.array(f"{name}.initial-latents", initial),
        "step_noise": cases.save_step_noise(writer, name, step_noise),
        "final_latents": writer.array(f"{name}.final-latents", final),
        **cases.decode_and_save(writer, pipe, name, final),
    }
    via_pipeline = _call(pipe, case, torch.Generator("cpu").manual_seed(case.seed), None, "np")
    saved = np.fromfile(writer.out_dir / record["image"]["file"], dtype="<f4").reshape(via_pipeline.shape)
    if not np.array_equal(saved, via_pipeline):
        raise AssertionError(f"{name}: saved image differs from the pipeline's own output_type='np' result")
    return record


def write_references(pipe, writer: RefWriter) -> dict[str, object]:
    pipe.set_progress_bar_config(disable=True)
    base_config = pipe.scheduler.config
    sections = {
        "text_encoder": _text_encoder_refs(pipe, writer),
        "txt2img": [_run_case(pipe, base_config, case, writer) for case in CASES],
    }
    pipe.scheduler = cases.make_scheduler(base_config, "PNDMScheduler", {})
    return sections
