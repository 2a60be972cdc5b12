"""DeepCache (the `DeepCache` package, DeepCacheSDHelper) on diffusers' StableDiffusionPipeline with the tiny-sd
weights: the truth for `--deep-cache N`.

Usage: /opt/diffuse-venv/bin/python tools/make_deepcache_refs.py
Writes test/fixtures/deepcache/ (cases.json and float32 .bin final latents; <= 0.1 MB). The torch tiny-sd is rebuilt
from its seeded builders (tools/fixtures_models.py) and checked against test/fixtures/tiny-sd's ONNX graphs first.

Each case runs the pipeline from its seed alone (latents drawn by the pipeline from torch.Generator('cpu')) with
helper.set_params(cache_interval=N, cache_branch_id=0) (skip_mode 'uniform', the package's default), CFG in one
batch of [negative, prompt] as the pipeline does. The helper decides per UNet call from the position of the call's
timestep in scheduler.timesteps: a multiple of N runs the whole UNet, the others reuse the cached blocks. Checked
here too: N=1 gives the plain pipeline's latents bit for bit, and N>1 differs from them (the cache is in use).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fixtures_cases as cases  # noqa: E402
import fixtures_models as models  # noqa: E402
import fixtures_onnx as onnx_tools  # noqa: E402
from fixtures_io import RefWriter  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "test" / "fixtures"
TINY_SD = FIXTURES / "tiny-sd"
OUT = FIXTURES / "deepcache"
MAX_OUT_MB = 0.1
PROMPT = "a photo of an astronaut riding a horse on mars"
NEGATIVE = "blurry, low quality"


@dataclass(frozen=True)
class Case:
    name: str
    scheduler: str
    interval: int
    steps: int
    seed: int
    guidance_scale: float = 7.5
    negative_prompt: str | None = NEGATIVE
    size: tuple[int, int] = (32, 32)


CASES = [
    Case("euler-n2", "EulerDiscreteScheduler", 2, 8, 31),
    Case("euler-n3", "EulerDiscreteScheduler", 3, 10, 32),
    Case("dpmpp-2m-n2", "DPMSolverMultistepScheduler", 2, 8, 33),
    Case("dpmpp-2m-n3-wide", "DPMSolverMultistepScheduler", 3, 9, 34, size=(48, 32)),
    Case("euler-n3-nocfg", "EulerDiscreteScheduler", 3, 7, 35, guidance_scale=1.0, negative_prompt=None),
]


def run(pipe, case: Case, interval: int | None) -> torch.Tensor:
    from DeepCache import DeepCacheSDHelper

    helper = None
    if interval is not None:
        helper = DeepCacheSDHelper(pipe=pipe)
        helper.set_params(cache_interval=interval, cache_branch_id=0)
        helper.enable()
    try:
        width, height = case.size
        return pipe(
            prompt=PROMPT,
            negative_prompt=case.negative_prompt,
            guidance_scale=case.guidance_scale,
            num_inference_steps=case.steps,
            width=width,
            height=height,
            generator=torch.Generator("cpu").manual_seed(case.seed),
            output_type="latent",
        ).images
    finally:
        if helper is not None:
            helper.disable()


def run_case(pipe, base_config, case: Case, writer: RefWriter) -> dict[str, object]:
    pipe.scheduler = cases.make_scheduler(base_config, case.scheduler, {})
    plain = run(pipe, case, None)
    cases.assert_same(case.name, "DeepCache N=1 vs no DeepCache", run(pipe, case, 1), plain)
    cached = run(pipe, case, case.interval)
    change = float((cached - plain).abs().max() / plain.abs().max())
    if change < 1e-3:
        raise AssertionError(f"{case.name}: DeepCache changed the latents by only {change:.2e} of max")
    return {
        "name": case.name,
        "prompt": PROMPT,
        "negative_prompt": case.negative_prompt,
        "guidance_scale": case.guidance_scale,
        "num_inference_steps": case.steps,
        "width": case.size[0],
        "height": case.size[1],
        "seed": case.seed,
        "cache_interval": case.interval,
        "cache_branch_id": 0,
        "scheduler": {"class": case.scheduler, "config": cases.scheduler_record(case.scheduler, {}, pipe.scheduler)["config"]},
        "change_vs_no_cache": change,
        "final_latents": writer.array(f"{case.name}.final-latents", cached),
    }


def main() -> None:
    import DeepCache
    import diffusers
    from importlib.metadata import version

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    pipe = models.build_txt2img_pipeline(TINY_SD / "tokenizer")
    pipe.set_progress_bar_config(disable=True)
    errors = onnx_tools.check_graphs_match_torch(TINY_SD, pipe, unet_in_channels=4)
    base_config = pipe.scheduler.config
    writer = RefWriter(OUT)
    records = [run_case(pipe, base_config, case, writer) for case in CASES]
    writer.manifest("cases.json", {
        "generator": "tools/make_deepcache_refs.py",
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__, "DeepCache": version("DeepCache")},
        "helper": f"{DeepCache.DeepCacheSDHelper.__module__}.DeepCacheSDHelper",
        "model": "tiny-sd",
        "onnx_vs_torch_max_abs": errors,
        "cases": records,
    })
    writer.finish(MAX_OUT_MB)
    for r in records:
        print(f"  {r['name']}: DeepCache moved the latents by {r['change_vs_no_cache']:.3e} of max")


if __name__ == "__main__":
    main()
