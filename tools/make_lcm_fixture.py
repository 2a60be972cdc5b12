"""Build the tiny Latent Consistency Model fixture and diffusers LatentConsistencyModelPipeline references.

Usage: /opt/diffuse-venv/bin/python tools/make_lcm_fixture.py
Writes test/fixtures/tiny-lcm/ (unet/ with the `timestep_cond` input, scheduler/ = LCMScheduler, model_index.json)
and test/fixtures/lcm-pipeline/ (cases.json + float32 .bin references). The text encoder, VAE and tokenizer are
tiny-sd's: the same seeded builders give the same weights, and this script checks that test/fixtures/tiny-sd's
ONNX text encoder and VAE decoder still agree with them before using them as the reference's.
Deterministic: fixed seeds, single-threaded torch.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from diffusers import LatentConsistencyModelPipeline, LCMScheduler, UNet2DConditionModel
from transformers import CLIPTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fixtures_cases as cases  # noqa: E402
import fixtures_models as models  # noqa: E402
import fixtures_onnx as onnx_tools  # noqa: E402
from fixtures_io import RefWriter, record_randn  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "test" / "fixtures"
TINY_SD = FIXTURES / "tiny-sd"
TINY_LCM = FIXTURES / "tiny-lcm"
LCM_REFS = FIXTURES / "lcm-pipeline"
WORK = Path("/tmp/diffuse-fixtures")

LCM_UNET_SEED = 4
# LCM-Dreamshaper-v7 uses 256; a small width keeps the fixture small while exercising the same input.
TIME_COND_PROJ_DIM = 32
MAX_TINY_LCM_MB = 4.0
PIPELINE_MODULE = "diffusers.pipelines.latent_consistency_models.pipeline_latent_consistency_text2img"
ASTRONAUT = "a photo of an astronaut riding a horse on mars"

# (name, steps, guidance_scale, seed, (width, height), num_images_per_prompt)
CASES = [
    ("lcm-4-cfg8", 4, 8.0, 40, (32, 32), 1),
    ("lcm-2-cfg1.5-wide", 2, 1.5, 41, (48, 32), 1),
    ("lcm-6-cfg8-batch2", 6, 8.0, 42, (32, 32), 2),
]

# get_guidance_scale_embedding references: real LCM widths (256), the fixture's, an odd one (zero-padded).
EMBEDDING_DIMS = [TIME_COND_PROJ_DIM, 256, 512, 7]
EMBEDDING_SCALES = [0.0, 1.0, 1.5, 2.0, 3.3, 4.0, 7.5, 8.0, 8.5, 12.25, 20.0]


def build_lcm_unet() -> UNet2DConditionModel:
    """tiny-sd's UNet architecture plus the guidance embedding projection LCM distillation adds."""
    config = models.build_unet(in_channels=4, seed=models.UNET_SEED).config
    torch.manual_seed(LCM_UNET_SEED)
    # As a keyword: from_config drops config entries listed in `_use_default_values`, as this one is.
    return UNet2DConditionModel.from_config(config, time_cond_proj_dim=TIME_COND_PROJ_DIM).eval()


def build_pipeline() -> LatentConsistencyModelPipeline:
    return LatentConsistencyModelPipeline(
        vae=models.build_vae(),
        text_encoder=models.build_text_encoder(),
        tokenizer=CLIPTokenizer.from_pretrained(str(TINY_SD / "tokenizer")),
        unet=build_lcm_unet(),
        scheduler=LCMScheduler.from_config(models.SD15_SCHEDULER_CONFIG),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _max_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max())


def check_against_onnx(pipe: LatentConsistencyModelPipeline, atol: float = 1e-4) -> dict[str, float]:
    """The exported LCM UNet (all three of its inputs) and tiny-sd's shared graphs vs the torch modules."""
    def session(path: Path) -> ort.InferenceSession:
        return ort.InferenceSession(str(path / "model.onnx"), providers=["CPUExecutionProvider"])

    g = torch.Generator("cpu").manual_seed(1234)
    latents = torch.randn(2, 4, 12, 8, generator=g)
    ids = pipe.tokenizer(["a red cube", ""], padding="max_length", max_length=77, return_tensors="pt").input_ids
    w = pipe.get_guidance_scale_embedding(torch.tensor([7.0, 0.5]), embedding_dim=TIME_COND_PROJ_DIM)
    errors: dict[str, float] = {}
    with torch.no_grad():
        emb = pipe.text_encoder(ids)[0]
        text = session(TINY_SD / "text_encoder")
        kind = text.get_inputs()[0].type
        got = text.run(["last_hidden_state"], {"input_ids": ids.numpy().astype(np.int32 if "int32" in kind else np.int64)})[0]
        errors["text_encoder (tiny-sd)"] = _max_err(got, emb.numpy())
        got = session(TINY_SD / "vae_decoder").run(None, {"latent_sample": latents.numpy()})[0]
        errors["vae_decoder (tiny-sd)"] = _max_err(got, pipe.vae.decode(latents).sample.numpy())
        # Fractional on purpose: the float timestep input must carry it through unrounded.
        feeds = {
            "sample": latents.numpy(),
            "timestep": np.array([701.37], dtype=np.float32),
            "encoder_hidden_states": emb.numpy(),
            "timestep_cond": w.numpy(),
        }
        got = session(TINY_LCM / "unet").run(None, feeds)[0]
        want = pipe.unet(latents, torch.tensor(701.37), emb, timestep_cond=w).sample.numpy()
        errors["unet"] = _max_err(got, want)
        # Without this the fixture could silently ignore its guidance input.
        other = pipe.unet(latents, torch.tensor(701.37), emb, timestep_cond=w.flip(0)).sample.numpy()
        if _max_err(other, want) < 1e-3:
            raise AssertionError("the LCM UNet barely depends on timestep_cond")
    for name, err in errors.items():
        if not err <= atol:
            raise AssertionError(f"ONNX {name} differs from torch by {err} > {atol}")
    return errors


def build_tiny_lcm(pipe: LatentConsistencyModelPipeline) -> dict[str, float]:
    torch_dir = WORK / "tiny-lcm-torch"
    pipe.save_pretrained(str(torch_dir), safe_serialization=True)
    export_dir = onnx_tools.export_onnx(torch_dir, WORK / "tiny-lcm-onnx", "text-to-image", pipe)
    # Text encoder, VAE and tokenizer are tiny-sd's: ship only the UNet, scheduler and model index.
    onnx_tools.copy_export(export_dir, TINY_LCM, ("unet",))
    errors = check_against_onnx(pipe)
    size = onnx_tools.folder_size_mb(TINY_LCM)
    if size > MAX_TINY_LCM_MB:
        raise AssertionError(f"{TINY_LCM} is {size:.2f} MB > {MAX_TINY_LCM_MB} MB")
    graphs = onnx_tools.describe_graphs(TINY_LCM, ("unet",))
    (TINY_LCM / "README.md").write_text(
        "<!-- generated by tools/make_lcm_fixture.py; do not edit -->\n\n"
        "# tiny-lcm: Latent Consistency Model UNet for the tiny-sd fixture\n\n"
        f"tiny-sd's UNet architecture with `time_cond_proj_dim={TIME_COND_PROJ_DIM}` (the guidance-scale embedding input "
        "of LCM-distilled UNets), random weights (seed "
        f"{LCM_UNET_SEED}), exported like tiny-sd's (float32 timestep). Only `unet/`, `scheduler/` (LCMScheduler) and "
        "`model_index.json` (LatentConsistencyModelPipeline) are here; text encoder, VAE and tokenizer are `../tiny-sd/`'s.\n\n"
        f"## Graphs\n\n{graphs}\n"
        "ONNX Runtime vs torch, max abs error on random inputs: "
        + ", ".join(f"{k} {v:.2e}" for k, v in errors.items()) + ".\n"
    )
    print(f"tiny-lcm: {size:.2f} MB, ONNX vs torch max abs error {errors}")
    return errors


def embedding_refs(pipe: LatentConsistencyModelPipeline, writer: RefWriter) -> list[dict[str, object]]:
    refs = []
    for dim in EMBEDDING_DIMS:
        # The pipeline's own expression: w = torch.tensor(guidance_scale - 1), one row per guidance scale.
        w = torch.stack([torch.tensor(s - 1) for s in EMBEDDING_SCALES])
        emb = pipe.get_guidance_scale_embedding(w, embedding_dim=dim)
        refs.append({
            "dim": dim,
            "guidance_scales": EMBEDDING_SCALES,
            "embedding": writer.array(f"guidance-embedding.dim{dim}", emb),
        })
    return refs


def _call(pipe, name: str, steps: int, guidance: float, seed: int, size: tuple[int, int], count: int, output_type: str):
    width, height = size
    return pipe(
        prompt=ASTRONAUT,
        num_inference_steps=steps,
        guidance_scale=guidance,
        width=width,
        height=height,
        num_images_per_prompt=count,
        generator=torch.Generator("cpu").manual_seed(seed),
        output_type=output_type,
    ).images


def run_case(pipe, case, writer: RefWriter) -> dict[str, object]:
    name, steps, guidance, seed, size, count = case
    prefix = f"lcm.{name}"
    scheduler_module = type(pipe.scheduler).__module__
    with record_randn(PIPELINE_MODULE, scheduler_module) as draws:
        final = _call(pipe, name, steps, guidance, seed, size, count, "latent")
    other, step_noise = cases.split_draws(prefix, draws, scheduler_module)
    if len(other) != 1 or len(step_noise) != steps - 1:
        raise AssertionError(f"{prefix}: expected 1 latents draw and {steps - 1} step draws, got {len(other)}, {len(step_noise)}")
    initial = other[0][1]
    redrawn = torch.randn(initial.shape, generator=torch.Generator("cpu").manual_seed(seed))
    cases.assert_same(prefix, "pipeline latents vs own randn", initial, redrawn)
    w = torch.tensor(guidance - 1).repeat(count)
    record = {
        "name": name,
        "prompt": ASTRONAUT,
        "guidance_scale": guidance,
        "num_inference_steps": steps,
        "width": size[0],
        "height": size[1],
        "num_images_per_prompt": count,
        "seed": seed,
        "scheduler": cases.scheduler_record("LCMScheduler", {}, pipe.scheduler),
        "w_embedding": writer.array(f"{prefix}.w-embedding", pipe.get_guidance_scale_embedding(w, TIME_COND_PROJ_DIM)),
        "initial_latents": writer.array(f"{prefix}.initial-latents", initial),
        "step_noise": cases.save_step_noise(writer, prefix, step_noise),
        "final_latents": writer.array(f"{prefix}.final-latents", final),
        **cases.decode_and_save(writer, pipe, prefix, final),
    }
    via_pipeline = _call(pipe, name, steps, guidance, seed, size, count, "np")
    saved = np.fromfile(writer.out_dir / record["image"]["file"], dtype="<f4").reshape(via_pipeline.shape)
    if not np.array_equal(saved, via_pipeline):
        raise AssertionError(f"{prefix}: saved image differs from the pipeline's own output_type='np' result")
    return record


def main() -> None:
    import diffusers

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    WORK.mkdir(parents=True, exist_ok=True)
    pipe = build_pipeline()
    errors = build_tiny_lcm(pipe)
    pipe.set_progress_bar_config(disable=True)
    writer = RefWriter(LCM_REFS)
    manifest = {
        "generator": "tools/make_lcm_fixture.py",
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__},
        "model": "tiny-lcm unet/scheduler/model_index + tiny-sd text_encoder/vae_decoder/tokenizer",
        "onnx_vs_torch_max_abs": errors,
        "conventions": {
            "bin": "raw little-endian float32, C order, shape in the entry",
            "seed": "torch.Generator('cpu').manual_seed(seed) given to LatentConsistencyModelPipeline; latents=None",
            "initial_latents": "the pipeline's N(0,1) draw (LCMScheduler.init_noise_sigma is 1)",
            "step_noise": "[steps - 1, ...latent shape]: LCMScheduler's per-step randn, in order",
            "final_latents": "output_type='latent': the last step's denoised latents, before / scaling_factor",
            "w_embedding": "the UNet's timestep_cond: get_guidance_scale_embedding(tensor(guidance_scale - 1).repeat(batch))",
            "image": "NHWC float32 in [0,1] (postprocess before uint8); png = round(image * 255)",
            "negative_prompt": "none: LatentConsistencyModelPipeline has no unconditional pass",
        },
        "guidance_embedding": embedding_refs(pipe, writer),
        "txt2img": [run_case(pipe, case, writer) for case in CASES],
    }
    writer.manifest("cases.json", manifest)
    print(f"references: {len(writer.files)} files in {LCM_REFS}, {onnx_tools.folder_size_mb(LCM_REFS):.2f} MB")


if __name__ == "__main__":
    main()
