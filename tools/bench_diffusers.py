"""Speed-benchmark peer: diffusers' PyTorch StableDiffusionPipeline on the CPU (fp32), Euler, printing JSON.

Run by bench/run.ts: /opt/diffuse-venv/bin/python tools/bench_diffusers.py --model <diffusers folder> [--width ...]
"""
from __future__ import annotations

import time

import torch
from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

from bench_common import PROMPT, StepClock, Stopwatch, emit, parse_args, runtime


def main() -> None:
    args = parse_args(__doc__)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    pipe = StableDiffusionPipeline.from_pretrained(args.model, torch_dtype=torch.float32, safety_checker=None)
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    load_s = time.perf_counter() - t0

    text, vae = Stopwatch(), Stopwatch()
    clock = StepClock(Stopwatch())
    pipe.text_encoder.forward = text.wrap(pipe.text_encoder.forward)
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
