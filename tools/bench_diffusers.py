"""Speed-benchmark peer: diffusers' PyTorch pipeline on the CPU (fp32), Euler, printing JSON.

The folder's model_index.json picks the pipeline: StableDiffusionPipeline (SD 1.5, LCM's folder) or
StableDiffusionXLPipeline (SDXL; its two text encoders are timed together, its VAE is fp32 already).

Run by bench/run.ts: /opt/diffuse-venv/bin/python tools/bench_diffusers.py --model <diffusers folder> [--width ...]
"""
from __future__ import annotations

import time

import torch
from diffusers import DiffusionPipeline, EulerDiscreteScheduler

from bench_common import PROMPT, StepClock, Stopwatch, emit, parse_args, runtime


def main() -> None:
    args = parse_args(__doc__)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    # SDXL's pipeline has no safety checker; the keyword is only given to the pipelines that take one.
    index = DiffusionPipeline.load_config(args.model)
    extra = {"safety_checker": None} if "safety_checker" in index else {}
    pipe = DiffusionPipeline.from_pretrained(args.model, torch_dtype=torch.float32, **extra)
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    load_s = time.perf_counter() - t0

    text, vae = Stopwatch(), Stopwatch()
    clock = StepClock(Stopwatch())
    for encoder in (pipe.text_encoder, getattr(pipe, "text_encoder_2", None)):
        if encoder is not None:
            encoder.forward = text.wrap(encoder.forward)
    pipe.unet.forward = clock.wrap_unet(pipe.unet.forward)
    pipe.vae.decode = vae.wrap(pipe.vae.decode)

    t1 = time.perf_counter()
    with torch.inference_mode():
        pipe(PROMPT, width=args.width, height=args.height, num_inference_steps=args.steps, guidance_scale=args.cfg,
             generator=torch.Generator("cpu").manual_seed(args.seed), output_type="np",
             callback_on_step_end=clock.on_step_end)
    total_s = time.perf_counter() - t1
    emit("diffusers", args, load_s=load_s, text_encoder_s=text.seconds, step_s=clock.step_seconds(),
         vae_decode_s=vae.seconds, total_s=total_s, inference_s=text.seconds + clock.unet.seconds + vae.seconds,
         unet_calls=clock.unet.calls, runtime=runtime("torch"))


if __name__ == "__main__":
    main()
