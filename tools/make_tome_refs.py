"""Token merging (the `tomesd` package, ToMe for SD) on diffusers' tiny-sd UNet and pipeline: the truth for
`--token-merging RATIO`.

Usage: /opt/diffuse-venv/bin/python tools/make_tome_refs.py
Writes test/fixtures/tome/ (cases.json and float32 .bin arrays; <= 0.1 MB). The torch tiny-sd is rebuilt from its
seeded builders (tools/fixtures_models.py) and checked against test/fixtures/tiny-sd's ONNX graphs first.

tomesd.apply_patch is called as A1111 calls it (modules/sd_models.py, apply_token_merging): use_rand=False,
merge_attn=True, merge_crossattn=False, merge_mlp=False, and tomesd's defaults max_downsample=1, sx=sy=2. With
max_downsample=1 only the transformer blocks at the latent's own resolution merge: in tiny-sd the down block's and
the last up block's attentions (3 blocks), not the mid block's (half resolution); this script checks that the
merge happens (outputs move) and that the mid block is left alone (its block's input token count is recorded).

Cases:
- unet: one UNet call, batch 2 (as CFG runs it), at two latent sizes and two ratios; inputs and out_sample.
- pipeline: StableDiffusionPipeline with Euler, a few steps, from the seed alone; final latents. One case adds
  DeepCache (DeepCacheSDHelper, cache_interval 2, branch 0) on top: `--token-merging` with `--deep-cache`.
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
from make_deepcache_refs import PROMPT, run as deep_cache_run  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "test" / "fixtures"
TINY_SD = FIXTURES / "tiny-sd"
OUT = FIXTURES / "tome"
MAX_OUT_MB = 0.1
NEGATIVE = "blurry, low quality"
# A1111's call (modules/sd_models.py apply_token_merging); the rest are tomesd's defaults.
A1111_ARGS = {"use_rand": False, "merge_attn": True, "merge_crossattn": False, "merge_mlp": False}

UNET_SIZES = [(16, 16), (10, 14)]  # latent (height, width): square, and one whose sides differ
UNET_RATIOS = [0.3, 0.5]
UNET_TIMESTEP = 701.37


@dataclass(frozen=True)
class PipelineCase:
    name: str
    ratio: float
    steps: int
    seed: int
    guidance_scale: float = 7.5
    negative_prompt: str | None = NEGATIVE
    size: tuple[int, int] = (32, 32)  # pixels (width, height)
    deep_cache: int | None = None  # DeepCacheSDHelper's cache_interval (branch 0) on top of ToMe


PIPELINE_CASES = [
    PipelineCase("euler-r05", 0.5, 6, 41),
    PipelineCase("euler-r03-wide-nocfg", 0.3, 5, 42, guidance_scale=1.0, negative_prompt=None, size=(48, 32)),
    PipelineCase("euler-r05-deepcache2", 0.5, 8, 43, deep_cache=2),
]


def patched(pipe, ratio: float | None):
    import tomesd

    tomesd.remove_patch(pipe)
    if ratio is not None:
        tomesd.apply_patch(pipe, ratio=ratio, **A1111_ARGS)


def merged_block_tokens(pipe, sample: torch.Tensor, emb: torch.Tensor) -> dict[str, int]:
    """The token count each transformer block sees (the mid block's is a quarter: tomesd leaves it alone)."""
    seen: dict[str, int] = {}

    def hook(name: str):
        def record(_module, args, kwargs) -> None:
            seen[name] = int((args[0] if args else kwargs["hidden_states"]).shape[1])

        return record

    hooks = [
        m.register_forward_pre_hook(hook(name), with_kwargs=True)
        for name, m in pipe.unet.named_modules()
        if type(m).__name__.endswith("BasicTransformerBlock")
    ]
    try:
        with torch.no_grad():
            pipe.unet(sample, torch.tensor(UNET_TIMESTEP), encoder_hidden_states=emb)
    finally:
        for h in hooks:
            h.remove()
    return seen


def unet_cases(pipe, writer: RefWriter) -> tuple[list[dict[str, object]], dict[str, object]]:
    g = torch.Generator("cpu").manual_seed(2024)
    ids = pipe.tokenizer([NEGATIVE, PROMPT], padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        emb = pipe.text_encoder(ids)[0]
    records = []
    context = writer.array("unet.encoder-hidden-states", emb)
    for h, w in UNET_SIZES:
        sample = torch.randn(2, 4, h, w, generator=g)
        sample_ref = writer.array(f"unet-{h}x{w}.sample", sample)
        patched(pipe, None)
        with torch.no_grad():
            plain = pipe.unet(sample, torch.tensor(UNET_TIMESTEP), encoder_hidden_states=emb).sample
        for ratio in UNET_RATIOS:
            patched(pipe, ratio)
            with torch.no_grad():
                out = pipe.unet(sample, torch.tensor(UNET_TIMESTEP), encoder_hidden_states=emb).sample
            change = float((out - plain).abs().max() / plain.abs().max())
            if change < 1e-3:
                raise AssertionError(f"unet {h}x{w} ratio {ratio}: ToMe moved the output by only {change:.2e} of max")
            name = f"unet-{h}x{w}-r{ratio}"
            records.append({
                "name": name,
                "latent_height": h,
                "latent_width": w,
                "ratio": ratio,
                "timestep": UNET_TIMESTEP,
                "sample": sample_ref,
                "change_vs_unmerged": change,
                "out_sample": writer.array(f"{name}.out-sample", out),
            })
    patched(pipe, None)
    tokens = merged_block_tokens(pipe, torch.randn(2, 4, 16, 16, generator=g), emb)
    return records, {"encoder_hidden_states": context, "block_tokens_at_16x16": tokens}


def run_pipeline(pipe, case: PipelineCase, ratio: float | None) -> torch.Tensor:
    """The DeepCache references' pipeline run (DeepCacheSDHelper when case.deep_cache is set) on the ToMe-patched UNet."""
    patched(pipe, ratio)
    try:
        return deep_cache_run(pipe, case, case.deep_cache)
    finally:
        patched(pipe, None)


def pipeline_case(pipe, base_config, case: PipelineCase, writer: RefWriter) -> dict[str, object]:
    pipe.scheduler = cases.make_scheduler(base_config, "EulerDiscreteScheduler", {})
    plain = run_pipeline(pipe, case, None)
    merged = run_pipeline(pipe, case, case.ratio)
    change = float((merged - plain).abs().max() / plain.abs().max())
    if change < 1e-3:
        raise AssertionError(f"{case.name}: ToMe changed the latents by only {change:.2e} of max")
    return {
        "name": case.name,
        "prompt": PROMPT,
        "negative_prompt": case.negative_prompt,
        "guidance_scale": case.guidance_scale,
        "num_inference_steps": case.steps,
        "width": case.size[0],
        "height": case.size[1],
        "seed": case.seed,
        "ratio": case.ratio,
        "deep_cache": case.deep_cache,
        "scheduler": {"class": "EulerDiscreteScheduler", "config": cases.scheduler_record("EulerDiscreteScheduler", {}, pipe.scheduler)["config"]},
        "change_vs_unmerged": change,
        "final_latents": writer.array(f"{case.name}.final-latents", merged),
    }


def main() -> None:
    import diffusers
    import tomesd  # noqa: F401
    from importlib.metadata import version

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    pipe = models.build_txt2img_pipeline(TINY_SD / "tokenizer")
    pipe.set_progress_bar_config(disable=True)
    errors = onnx_tools.check_graphs_match_torch(TINY_SD, pipe, unet_in_channels=4)
    base_config = pipe.scheduler.config
    writer = RefWriter(OUT)
    unet_records, shared = unet_cases(pipe, writer)
    pipeline_records = [pipeline_case(pipe, base_config, case, writer) for case in PIPELINE_CASES]
    writer.manifest("cases.json", {
        "generator": "tools/make_tome_refs.py",
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__, "tomesd": version("tomesd"), "DeepCache": version("DeepCache")},
        "apply_patch": {**A1111_ARGS, "max_downsample": 1, "sx": 2, "sy": 2},
        "model": "tiny-sd",
        "onnx_vs_torch_max_abs": errors,
        **shared,
        "unet_cases": unet_records,
        "pipeline_cases": pipeline_records,
    })
    writer.finish(MAX_OUT_MB)
    for r in unet_records + pipeline_records:
        print(f"  {r['name']}: ToMe moved the output by {r['change_vs_unmerged']:.3e} of max")


if __name__ == "__main__":
    main()
