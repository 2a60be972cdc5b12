"""Build the tiny SDXL fixtures (base, refiner, inpainting) and diffusers' SDXL pipeline references.

Usage: /opt/diffuse-venv/bin/python tools/make_sdxl_fixture.py
Writes test/fixtures/tiny-sdxl/ (optimum's SDXL export: text_encoder/, text_encoder_2/, tokenizer/, tokenizer_2/,
unet/ with text_embeds and time_ids, vae_encoder/, vae_decoder/), test/fixtures/tiny-sdxl-refiner/ and
tiny-sdxl-inpaint/ (unet/, scheduler/, model_index.json; the rest is tiny-sdxl's), and test/fixtures/sdxl-pipeline/
(cases.json + float32 .bin references) from StableDiffusionXLPipeline, StableDiffusionXLImg2ImgPipeline,
StableDiffusionXLInpaintPipeline and base + refiner (denoising_end / denoising_start).
Deterministic: fixed seeds, single-threaded torch.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fixtures_cases as cases  # noqa: E402
import fixtures_onnx as onnx_tools  # noqa: E402
import sdxl_fixture_models as models  # noqa: E402
from fixtures_io import RefWriter  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "test" / "fixtures"
BASE = FIXTURES / "tiny-sdxl"
REFINER = FIXTURES / "tiny-sdxl-refiner"
INPAINT = FIXTURES / "tiny-sdxl-inpaint"
REFS = FIXTURES / "sdxl-pipeline"
WORK = Path("/tmp/diffuse-fixtures-sdxl")
MAX_TOTAL_MB = 2.5

PROMPT = "a photo of an astronaut riding a horse on mars"
NEGATIVE = "blurry, low quality"

# (name, scheduler class, overrides, steps, guidance, negative (None: diffusers' zeroed negative), seed, size, batch, clip_skip)
TXT2IMG = [
    ("euler", "EulerDiscreteScheduler", {}, 6, 5.0, NEGATIVE, 1, (32, 32), 1, None),
    ("euler-a-zero-negative", "EulerAncestralDiscreteScheduler", {}, 6, 5.0, None, 2, (32, 32), 1, None),
    ("dpmpp-2m-karras", "DPMSolverMultistepScheduler", {"use_karras_sigmas": True}, 6, 6.0, NEGATIVE, 3, (32, 32), 1, None),
    ("ddim", "DDIMScheduler", {}, 6, 5.0, NEGATIVE, 4, (32, 32), 1, None),
    ("heun", "HeunDiscreteScheduler", {}, 4, 5.0, NEGATIVE, 5, (32, 32), 1, None),
    ("unipc", "UniPCMultistepScheduler", {}, 6, 5.0, NEGATIVE, 6, (32, 32), 1, None),
    ("lms", "LMSDiscreteScheduler", {}, 6, 5.0, NEGATIVE, 10, (32, 32), 1, None),
    ("euler-wide-batch2", "EulerDiscreteScheduler", {}, 5, 5.0, NEGATIVE, 7, (48, 32), 2, None),
    ("euler-clip-skip", "EulerDiscreteScheduler", {}, 5, 5.0, NEGATIVE, 8, (32, 32), 1, 1),
    ("turbo-1-step", "EulerAncestralDiscreteScheduler", {"timestep_spacing": "trailing"}, 1, 0.0, None, 9, (32, 32), 1, None),
    # SDXL-Turbo's card: up to 4 steps, guidance off, its scheduler (Euler a, trailing timesteps).
    ("turbo-4-steps", "EulerAncestralDiscreteScheduler", {"timestep_spacing": "trailing"}, 4, 0.0, None, 20, (32, 32), 1, None),
]

# (name, scheduler class, overrides, steps, guidance, strength, seed)
IMG2IMG = [
    ("euler-0.6", "EulerDiscreteScheduler", {}, 8, 5.0, 0.6, 11),
    ("dpmpp-2m-0.5", "DPMSolverMultistepScheduler", {}, 8, 5.0, 0.5, 12),
]

INPAINT_CASES = [
    ("euler-1.0", "EulerDiscreteScheduler", {}, 6, 5.0, 1.0, 13),
    ("ddim-0.75", "DDIMScheduler", {}, 8, 5.0, 0.75, 14),
]

# (name, scheduler class, overrides, steps, guidance, switch, seed): samplers that keep no state between steps, where
# diffusers' two pipelines (base to denoising_end, refiner from denoising_start) are one loop with the model swapped.
REFINER_CASES = [
    ("euler-0.8", "EulerDiscreteScheduler", {}, 10, 5.0, 0.8, 15),
    ("euler-a-0.8", "EulerAncestralDiscreteScheduler", {}, 10, 5.0, 0.8, 16),
    ("ddim-0.7", "DDIMScheduler", {}, 10, 5.0, 0.7, 17),
    ("ddpm-0.8", "DDPMScheduler", {}, 10, 5.0, 0.8, 18),
    ("euler-trailing-0.75", "EulerDiscreteScheduler", {"timestep_spacing": "trailing"}, 8, 5.0, 0.75, 19),
]


# Nodes whose torch scope names stay: a LoRA finds the layer it patches by the module path they spell
# (src/graphs/lora/lora-targets.ts), as in every full-size export.
WEIGHT_OPS = ("MatMul", "Gemm", "Conv")


def compact_names(path: Path) -> None:
    """Short names for the graph's other nodes and intermediate values (optimum spells out module paths, half the file
    at these widths); inputs, outputs, initializers, weight layers' node names and every operation stay as exported."""
    model = onnx.load(str(path))
    graph = model.graph
    keep = {v.name for v in graph.input} | {v.name for v in graph.output} | {t.name for t in graph.initializer}
    renamed: dict[str, str] = {}

    def short(name: str) -> str:
        if name == "" or name in keep:
            return name
        return renamed.setdefault(name, f"v{len(renamed):x}")

    for k, node in enumerate(graph.node):
        if node.op_type not in WEIGHT_OPS:
            node.name = f"n{k:x}"
        node.doc_string = ""
        node.input[:] = [short(n) for n in node.input]
        node.output[:] = [short(n) for n in node.output]
    del graph.value_info[:]
    onnx.save(model, str(path))


def ship(export_dir: Path, dest: Path, graphs: tuple[str, ...], tokenizers: tuple[str, ...] = ()) -> None:
    onnx_tools.copy_export(export_dir, dest, graphs)
    for graph in graphs:
        compact_names(dest / graph / "model.onnx")
    for tok in tokenizers:
        shutil.copytree(WORK / "tokenizers" / tok, dest / tok)


def export(pipe, name: str, task: str) -> Path:
    torch_dir = WORK / f"{name}-torch"
    pipe.save_pretrained(str(torch_dir), safe_serialization=True)
    return onnx_tools.export_onnx(torch_dir, WORK / f"{name}-onnx", task, pipe)


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path / "model.onnx"), providers=["CPUExecutionProvider"])


def _ids(session: ort.InferenceSession, ids: torch.Tensor) -> np.ndarray:
    return ids.numpy().astype(np.int32 if "int32" in session.get_inputs()[0].type else np.int64)


def check_graphs(base, refiner, inpaint, atol: float = 1e-4) -> dict[str, float]:
    """Every exported graph (all the outputs the pipeline reads) against its torch module on the same inputs."""
    errors: dict[str, float] = {}
    err = lambda a, b: float(np.abs(np.asarray(a) - np.asarray(b)).max())  # noqa: E731
    g = torch.Generator("cpu").manual_seed(1234)
    ids = base.tokenizer(["a red cube", ""], padding="max_length", max_length=77, return_tensors="pt").input_ids
    ids2 = base.tokenizer_2(["a red cube", ""], padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        t1 = base.text_encoder(ids, output_hidden_states=True)
        s = _session(BASE / "text_encoder")
        names = [f"hidden_states.{i}" for i in range(len(t1.hidden_states))]
        got = s.run(names, {"input_ids": _ids(s, ids)})
        errors["text_encoder"] = max(err(a, b) for a, b in zip(got, t1.hidden_states))
        t2 = base.text_encoder_2(ids2, output_hidden_states=True)
        s = _session(BASE / "text_encoder_2")
        got = s.run(["text_embeds", *names], {"input_ids": _ids(s, ids2)})
        errors["text_encoder_2"] = max(err(got[0], t2.text_embeds), *(err(a, b) for a, b in zip(got[1:], t2.hidden_states)))
        latents = torch.randn(2, 4, 12, 8, generator=g)
        context = torch.cat([t1.hidden_states[-2], t2.hidden_states[-2]], dim=-1)
        for label, pipe, folder, width, ids_count in (("unet", base, BASE, context, 6), ("refiner unet", refiner, REFINER, t2.hidden_states[-2], 5), ("inpaint unet", inpaint, INPAINT, context, 6)):
            channels = pipe.unet.config.in_channels
            sample = torch.cat([latents, torch.randn(2, channels - 4, 12, 8, generator=g)], 1)
            time_ids = torch.tensor([[24.0, 16.0, 0.0, 0.0, 24.0, 16.0, 2.5][:ids_count], [16.0, 16.0, 3.0, 1.0, 32.0, 32.0, 6.0][:ids_count]])
            feeds = {"sample": sample.numpy(), "timestep": np.array([701.37], dtype=np.float32), "encoder_hidden_states": width.numpy(), "text_embeds": t2.text_embeds.numpy(), "time_ids": time_ids.numpy()}
            got = _session(folder / "unet").run(None, feeds)[0]
            want = pipe.unet(sample, torch.tensor(701.37), width, added_cond_kwargs={"text_embeds": t2.text_embeds, "time_ids": time_ids}).sample
            errors[label] = err(got, want)
            # Without this the fixture could silently ignore its micro-conditioning.
            other = pipe.unet(sample, torch.tensor(701.37), width, added_cond_kwargs={"text_embeds": t2.text_embeds, "time_ids": time_ids.flip(0)}).sample
            if err(other, want) < 1e-3:
                raise AssertionError(f"{label} barely depends on time_ids")
        got = _session(BASE / "vae_decoder").run(None, {"latent_sample": latents.numpy()})[0]
        errors["vae_decoder"] = err(got, base.vae.decode(latents).sample)
        image = torch.rand(1, 3, 24, 16, generator=g) * 2 - 1
        got = _session(BASE / "vae_encoder").run(None, {"sample": image.numpy()})[0]
        errors["vae_encoder"] = err(got, base.vae.encode(image).latent_dist.parameters)
    for name, e in errors.items():
        if not e <= atol:
            raise AssertionError(f"ONNX {name} differs from torch by {e} > {atol}")
    return errors


def init_picture() -> Image.Image:
    """A smooth 32x32 scene: colour ramps and a disc, so the VAE sees structure."""
    y, x = np.mgrid[0:32, 0:32].astype(np.float32)
    disc = ((x - 20) ** 2 + (y - 12) ** 2 < 60).astype(np.float32)
    rgb = np.stack([x * 8, y * 8, 255 - disc * 200 - x * 2], axis=-1).clip(0, 255).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


def mask_picture() -> Image.Image:
    m = np.zeros((32, 32), dtype=np.uint8)
    m[6:22, 10:28] = 255
    return Image.fromarray(m, "L")


def _with_scheduler(pipe, cls: str, overrides: dict[str, object]):
    pipe.scheduler = cases.make_scheduler(models.SDXL_SCHEDULER_CONFIG, cls, overrides)
    return pipe


def _common(name: str, kind: str, cls: str, overrides, steps, guidance, negative, seed, pipe) -> dict[str, object]:
    return {
        "name": name,
        "kind": kind,
        "prompt": PROMPT,
        "negative_prompt": negative,
        "guidance_scale": guidance,
        "num_inference_steps": steps,
        "seed": seed,
        "scheduler": cases.scheduler_record(cls, overrides, pipe.scheduler),
    }


def _finish(writer: RefWriter, pipe, prefix: str, record: dict[str, object], final: torch.Tensor) -> dict[str, object]:
    """Final latents and diffusers' own PNGs (round(image * 255) of its postprocess), the decoded float image left out."""
    record["final_latents"] = writer.array(f"{prefix}.final-latents", final)
    with torch.no_grad():
        decoded = pipe.vae.decode(final / pipe.vae.config.scaling_factor, return_dict=False)[0]
    if float(decoded.std()) < 1e-3:
        raise AssertionError(f"{prefix}: decoded image is (nearly) constant")
    record["png"] = [writer.png(f"{prefix}.{i}", im) for i, im in enumerate(pipe.image_processor.postprocess(decoded, output_type="pil"))]
    return record


def skipped_embeds(pipe, negative: str, clip_skip: int) -> dict[str, torch.Tensor]:
    """Both prompts read clip_skip layers earlier. diffusers' encode_prompt applies clip_skip to the prompt only (its
    negative branch always takes hidden_states[-2]); A1111 and diffuse skip on both, so each is encoded as a prompt."""
    with torch.no_grad():
        pe, _, pp, _ = pipe.encode_prompt(PROMPT, do_classifier_free_guidance=False, clip_skip=clip_skip)
        ne, _, np_, _ = pipe.encode_prompt(negative, do_classifier_free_guidance=False, clip_skip=clip_skip)
    return {"prompt_embeds": pe, "negative_prompt_embeds": ne, "pooled_prompt_embeds": pp, "negative_pooled_prompt_embeds": np_}


def txt2img_case(pipe, case, writer: RefWriter) -> dict[str, object]:
    name, cls, overrides, steps, guidance, negative, seed, (width, height), batch, clip_skip = case
    _with_scheduler(pipe, cls, overrides)
    text = {"prompt": PROMPT, "negative_prompt": negative} if clip_skip is None else skipped_embeds(pipe, negative, clip_skip)
    final = pipe(
        **text,
        num_inference_steps=steps,
        guidance_scale=guidance,
        width=width,
        height=height,
        num_images_per_prompt=batch,
        generator=torch.Generator("cpu").manual_seed(seed),
        output_type="latent",
    ).images
    record = _common(name, "txt2img", cls, overrides, steps, guidance, negative, seed, pipe)
    record.update({"width": width, "height": height, "num_images_per_prompt": batch, "clip_skip": clip_skip})
    return _finish(writer, pipe, f"txt2img.{name}", record, final)


def img2img_case(pipe, case, writer: RefWriter, kind: str, init: Image.Image, mask: Image.Image | None) -> dict[str, object]:
    name, cls, overrides, steps, guidance, strength, seed = case
    _with_scheduler(pipe, cls, overrides)
    extra = {"mask_image": mask} if mask is not None else {}
    final = pipe(
        prompt=PROMPT,
        negative_prompt=NEGATIVE,
        image=init,
        strength=strength,
        num_inference_steps=steps,
        guidance_scale=guidance,
        width=init.width,
        height=init.height,
        generator=torch.Generator("cpu").manual_seed(seed),
        output_type="latent",
        **extra,
    ).images
    record = _common(name, kind, cls, overrides, steps, guidance, NEGATIVE, seed, pipe)
    record.update({"width": init.width, "height": init.height, "strength": strength})
    return _finish(writer, pipe, f"{kind}.{name}", record, final)


def refiner_case(base, refiner, case, writer: RefWriter) -> dict[str, object]:
    name, cls, overrides, steps, guidance, switch, seed = case
    _with_scheduler(base, cls, overrides)
    _with_scheduler(refiner, cls, overrides)
    generator = torch.Generator("cpu").manual_seed(seed)
    args = {"prompt": PROMPT, "negative_prompt": NEGATIVE, "num_inference_steps": steps, "guidance_scale": guidance, "generator": generator, "output_type": "latent"}
    handed = base(**args, width=32, height=32, denoising_end=switch).images
    final = refiner(**args, image=handed, denoising_start=switch).images
    record = _common(name, "refiner", cls, overrides, steps, guidance, NEGATIVE, seed, base)
    record.update({
        "width": 32,
        "height": 32,
        "switch": switch,
        "aesthetic_score": 6.0,
        "negative_aesthetic_score": 2.5,
        "refiner_timesteps": refiner.scheduler.timesteps.to(torch.float64).tolist(),
    })
    return _finish(writer, refiner, f"refiner.{name}", record, final)


def conditioning_refs(base, refiner, writer: RefWriter) -> list[dict[str, object]]:
    """encode_prompt's outputs and the time ids, to test the conditioning alone."""
    out = []
    for clip_skip in (None, 1):
        if clip_skip is None:
            with torch.no_grad():
                pe, ne, pp, np_ = base.encode_prompt(PROMPT, negative_prompt=NEGATIVE, do_classifier_free_guidance=True)
        else:
            e = skipped_embeds(base, NEGATIVE, clip_skip)
            pe, ne, pp, np_ = e["prompt_embeds"], e["negative_prompt_embeds"], e["pooled_prompt_embeds"], e["negative_pooled_prompt_embeds"]
        tag = f"base.clip-skip-{clip_skip or 0}"
        out.append({
            "name": tag,
            "clip_skip": clip_skip,
            "prompt_embeds": writer.array(f"cond.{tag}.prompt-embeds", pe[0]),
            "negative_prompt_embeds": writer.array(f"cond.{tag}.negative-prompt-embeds", ne[0]),
            "pooled": writer.array(f"cond.{tag}.pooled", pp[0]),
            "negative_pooled": writer.array(f"cond.{tag}.negative-pooled", np_[0]),
        })
    with torch.no_grad():
        pe, ne, pp, np_ = refiner.encode_prompt(PROMPT, negative_prompt=NEGATIVE, do_classifier_free_guidance=True)
    out.append({
        "name": "refiner",
        "clip_skip": None,
        "prompt_embeds": writer.array("cond.refiner.prompt-embeds", pe[0]),
        "negative_prompt_embeds": writer.array("cond.refiner.negative-prompt-embeds", ne[0]),
        "pooled": writer.array("cond.refiner.pooled", pp[0]),
        "negative_pooled": writer.array("cond.refiner.negative-pooled", np_[0]),
    })
    return out


def main() -> None:
    import diffusers

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    models.write_tokenizer(WORK / "tokenizers" / "tokenizer", pad=models.EOS)
    models.write_tokenizer(WORK / "tokenizers" / "tokenizer_2", pad="!")
    base = models.build_base(WORK / "tokenizers")
    refiner = models.build_refiner(base)
    inpaint = models.build_inpaint(base)
    ship(export(base, "base", "text-to-image"), BASE, ("text_encoder", "text_encoder_2", "unet", "vae_encoder", "vae_decoder"), ("tokenizer", "tokenizer_2"))
    ship(export(refiner, "refiner", "image-to-image"), REFINER, ("unet",))
    ship(export(inpaint, "inpaint", "inpainting"), INPAINT, ("unet",))
    errors = check_graphs(base, refiner, inpaint)
    for pipe in (base, refiner, inpaint):
        pipe.set_progress_bar_config(disable=True)

    writer = RefWriter(REFS)
    init, mask = init_picture(), mask_picture()
    init_file, mask_file = writer.png("init", init), writer.png("mask", mask)
    img2img = diffusers.StableDiffusionXLImg2ImgPipeline(**base.components)
    img2img.set_progress_bar_config(disable=True)
    manifest = {
        "generator": "tools/make_sdxl_fixture.py",
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__},
        "onnx_vs_torch_max_abs": errors,
        "conventions": {
            "bin": "raw little-endian float32, C order, shape in the entry",
            "seed": "torch.Generator('cpu').manual_seed(seed) given to the pipeline; latents=None",
            "negative_prompt": "null: not given, so diffusers zeroes the negative conditioning (force_zeros_for_empty_prompt)",
            "clip_skip": "diffusers' clip_skip (hidden_states[-(clip_skip + 2)]) for prompt and negative prompt alike (encoded separately: encode_prompt skips on the prompt only); null = penultimate layer",
            "final_latents": "output_type='latent': before / scaling_factor",
            "png": "the pipeline's own PIL output: round(image * 255) of its float postprocess",
            "refiner": "base(denoising_end=switch, output_type='latent') then refiner(image=those latents, denoising_start=switch), one generator",
        },
        "init_image": init_file,
        "mask_image": mask_file,
        "conditioning": conditioning_refs(base, refiner, writer),
        "txt2img": [txt2img_case(base, c, writer) for c in TXT2IMG],
        "img2img": [img2img_case(img2img, c, writer, "img2img", init, None) for c in IMG2IMG],
        "inpaint": [img2img_case(inpaint, c, writer, "inpaint", init, mask) for c in INPAINT_CASES],
        "refiner": [refiner_case(base, refiner, c, writer) for c in REFINER_CASES],
    }
    writer.manifest("cases.json", manifest)
    total = sum(onnx_tools.folder_size_mb(p) for p in (BASE, REFINER, INPAINT, REFS))
    if total > MAX_TOTAL_MB:
        raise AssertionError(f"SDXL fixtures are {total:.2f} MB > {MAX_TOTAL_MB} MB")
    for folder in (BASE, REFINER, INPAINT):
        (folder / "README.md").write_text(
            "<!-- generated by tools/make_sdxl_fixture.py; do not edit -->\n\n"
            f"# {folder.name}: random-weight tiny SDXL (tools/sdxl_fixture_models.py), exported by optimum\n\n"
            + onnx_tools.describe_graphs(folder, tuple(p.name for p in sorted(folder.iterdir()) if (p / "model.onnx").exists()))
        )
    print(f"SDXL fixtures {total:.2f} MB; ONNX vs torch {errors}; {len(writer.files)} reference files")


if __name__ == "__main__":
    main()
