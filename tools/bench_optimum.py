"""Speed-benchmark peer: optimum's ONNX Runtime diffusion pipeline (CPU, fp32), Euler, printing JSON.

The folder's model_index.json picks the pipeline (ORTDiffusionPipeline dispatches on its class name):
ORTStableDiffusionPipeline for SD 1.5, ORTStableDiffusionXLPipeline for SDXL (its two text encoders timed together).
`--lean-sessions` opens every session without ONNX Runtime's CPU memory arena and without weight prepacking
(`enable_cpu_mem_arena=False`, `session.disable_prepacking=1`): optimum keeps all its sessions open at once, and with
the defaults SDXL's would not fit in 24 GB.

Run by bench/run.ts: /opt/diffuse-venv/bin/python tools/bench_optimum.py --model <diffusers ONNX folder> [--lean-sessions] [...]
"""
from __future__ import annotations

import time

import numpy as np
import onnxruntime as ort
from diffusers import EulerDiscreteScheduler
from optimum.onnxruntime import ORTDiffusionPipeline

from bench_common import PROMPT, StepClock, Stopwatch, emit, parse_args, runtime


def session_options(threads: int, lean: bool) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    if lean:
        options.enable_cpu_mem_arena = False
        options.add_session_config_entry("session.disable_prepacking", "1")
    return options


def main() -> None:
    args = parse_args(__doc__, flags=(("--lean-sessions", "no memory arena, no prepacking"),))
    lean = args.lean_sessions
    t0 = time.perf_counter()
    pipe = ORTDiffusionPipeline.from_pretrained(args.model, provider="CPUExecutionProvider", session_options=session_options(args.threads, lean))
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    load_s = time.perf_counter() - t0

    encoder_2 = getattr(pipe, "text_encoder_2", None)
    if encoder_2 is not None and "text_embeds" in encoder_2.output_names:
        # diffusers takes the second encoder's first output as the pooled embedding; optimum's export lists text_embeds
        # first, and so do diffuse's conversions since src/graphs/clip-text.ts was corrected; one cached before that
        # (the converter version was not bumped for an order) lists last_hidden_state first: reordered by name here.
        encoder_2.output_names = {"text_embeds": encoder_2.output_names["text_embeds"],
                                  **{k: v for k, v in encoder_2.output_names.items() if k != "text_embeds"}}

    text, vae = Stopwatch(), Stopwatch()
    clock = StepClock(Stopwatch())
    # Wrapping the sessions' run isolates ONNX Runtime's own time from optimum's Python around it.
    for encoder in (pipe.text_encoder, encoder_2):
        if encoder is not None:
            encoder.session.run = text.wrap(encoder.session.run)
    pipe.unet.session.run = clock.wrap_unet(pipe.unet.session.run)
    pipe.vae_decoder.session.run = vae.wrap(pipe.vae_decoder.session.run)

    t1 = time.perf_counter()
    pipe(PROMPT, width=args.width, height=args.height, num_inference_steps=args.steps, guidance_scale=args.cfg,
         generator=np.random.RandomState(args.seed), output_type="np", callback_on_step_end=clock.on_step_end)
    total_s = time.perf_counter() - t1
    emit("optimum", args, load_s=load_s, text_encoder_s=text.seconds, step_s=clock.step_seconds(),
         vae_decode_s=vae.seconds, total_s=total_s, inference_s=text.seconds + clock.unet.seconds + vae.seconds,
         unet_calls=clock.unet.calls, runtime=runtime("onnxruntime"), lean_sessions=lean)


if __name__ == "__main__":
    main()
