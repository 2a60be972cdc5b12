"""Speed-benchmark peer: optimum's ORTStableDiffusionPipeline (ONNX Runtime, CPU, fp32), Euler, printing JSON.

Run by bench/run.ts: /opt/diffuse-venv/bin/python tools/bench_optimum.py --model <diffusers ONNX folder> [...]
"""
from __future__ import annotations

import time

import numpy as np
import onnxruntime as ort
from diffusers import EulerDiscreteScheduler
from optimum.onnxruntime import ORTStableDiffusionPipeline

from bench_common import PROMPT, StepClock, Stopwatch, emit, parse_args, runtime


def main() -> None:
    args = parse_args(__doc__)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    t0 = time.perf_counter()
    pipe = ORTStableDiffusionPipeline.from_pretrained(args.model, provider="CPUExecutionProvider", session_options=options)
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    load_s = time.perf_counter() - t0

    text, vae = Stopwatch(), Stopwatch()
    clock = StepClock(Stopwatch())
    # Wrapping the sessions' run isolates ONNX Runtime's own time from optimum's Python around it.
    pipe.text_encoder.session.run = text.wrap(pipe.text_encoder.session.run)
    pipe.unet.session.run = clock.wrap_unet(pipe.unet.session.run)
    pipe.vae_decoder.session.run = vae.wrap(pipe.vae_decoder.session.run)

    t1 = time.perf_counter()
    pipe(PROMPT, width=args.width, height=args.height, num_inference_steps=args.steps, guidance_scale=args.cfg,
         generator=np.random.RandomState(args.seed), output_type="np", callback_on_step_end=clock.on_step_end)
    total_s = time.perf_counter() - t1
    emit("optimum", args, load_s=load_s, text_encoder_s=text.seconds, step_s=clock.step_seconds(),
         vae_decode_s=vae.seconds, total_s=total_s, inference_s=text.seconds + clock.unet.seconds + vae.seconds,
         unet_calls=clock.unet.calls, runtime=runtime("onnxruntime"))


if __name__ == "__main__":
    main()
