"""SDXL textual-inversion embeddings on tiny-sdxl: files and diffusers' StableDiffusionXLPipeline references.

Usage: /opt/diffuse-venv/bin/python tools/make_sdxl_embedding_refs.py (after tools/make_sdxl_fixture.py)
Writes test/fixtures/sdxl-embeddings/: an SDXL embedding as A1111 and kohya save them ({clip_l: [2, 16],
clip_g: [2, 24]}, safetensors), an SD 1.x-style one ({emb_params: [2, 16]}) for the hostile cases, malformed SDXL
files (clip_l alone, unequal vector counts), and the references: the pipeline with the embedding loaded as
diffusers documents for SDXL (load_textual_inversion once per text encoder with its tokenizer, clip_l into
text_encoder, clip_g into text_encoder_2), encode_prompt's embeds and pooled output, and txt2img final latents.
The torch modules are rebuilt from tools/sdxl_fixture_models.py's seeds and checked against the ONNX fixture first.
Deterministic: fixed seeds, single-threaded torch.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fixtures_cases as cases  # noqa: E402
import sdxl_fixture_models as models  # noqa: E402
from fixtures_io import RefWriter  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "test" / "fixtures"
BASE = FIXTURES / "tiny-sdxl"
OUT = FIXTURES / "sdxl-embeddings"
EMBEDDING_SEED = 31
TRIGGER = "sdxlemb"
NEGATIVE = "blurry, low quality"

# (name, prompt, negative prompt, scheduler class, steps, guidance, seed)
CASES = [
    ("euler", f"a photo of {TRIGGER} riding a horse on mars", NEGATIVE, "EulerDiscreteScheduler", 5, 5.0, 41),
    ("ddim-negative", "a photo of an astronaut riding a horse", f"{TRIGGER}, blurry", "DDIMScheduler", 5, 6.0, 42),
]


def check_against_onnx(pipe) -> float:
    """The rebuilt torch encoders equal the fixture's ONNX graphs, so these references describe the fixture."""
    ids = pipe.tokenizer(["a red cube"], padding="max_length", max_length=77, return_tensors="pt").input_ids
    worst = 0.0
    with torch.no_grad():
        for encoder, folder in ((pipe.text_encoder, "text_encoder"), (pipe.text_encoder_2, "text_encoder_2")):
            session = ort.InferenceSession(str(BASE / folder / "model.onnx"), providers=["CPUExecutionProvider"])
            dtype = np.int32 if "int32" in session.get_inputs()[0].type else np.int64
            got = session.run(["last_hidden_state"], {"input_ids": ids.numpy().astype(dtype)})[0]
            worst = max(worst, float(np.abs(got - encoder(ids).last_hidden_state.numpy()).max()))
    if worst > 1e-5:
        raise AssertionError(f"rebuilt text encoders differ from test/fixtures/tiny-sdxl by {worst}")
    return worst


def embedding_vectors(pipe) -> dict[str, torch.Tensor]:
    """Two vectors per encoder at the scale of each token table, so the embedding moves the conditioning visibly."""
    torch.manual_seed(EMBEDDING_SEED)
    out = {}
    for key, encoder in (("clip_l", pipe.text_encoder), ("clip_g", pipe.text_encoder_2)):
        table = encoder.get_input_embeddings().weight
        out[key] = (torch.randn(2, table.shape[1]) * float(table.std())).contiguous()
    return out


def write_files(writer: RefWriter, vectors: dict[str, torch.Tensor]) -> dict[str, str]:
    files = {
        f"{TRIGGER}.safetensors": vectors,
        # An SD 1.x file whose width happens to equal clip_l's: refused for its layout, not its width.
        "sd1emb.safetensors": {"emb_params": vectors["clip_l"].clone()},
        "clip-l-only.safetensors": {"clip_l": vectors["clip_l"].clone()},
        "uneven.safetensors": {"clip_l": vectors["clip_l"].clone(), "clip_g": vectors["clip_g"][:1].clone()},
    }
    for name, tensors in files.items():
        save_file(tensors, str(writer._claim(name)))
    return {name: ", ".join(f"{k} {list(v.shape)}" for k, v in tensors.items()) for name, tensors in files.items()}


def main() -> None:
    import diffusers

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    pipe = models.build_base(BASE)
    pipe.set_progress_bar_config(disable=True)
    onnx_error = check_against_onnx(pipe)
    vectors = embedding_vectors(pipe)
    writer = RefWriter(OUT)
    files = write_files(writer, vectors)
    with torch.no_grad():
        plain = pipe.encode_prompt(CASES[0][1], do_classifier_free_guidance=False)
    pipe.load_textual_inversion(vectors["clip_l"], token=TRIGGER, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer)
    pipe.load_textual_inversion(vectors["clip_g"], token=TRIGGER, text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2)

    records = []
    for name, prompt, negative, cls, steps, guidance, seed in CASES:
        pipe.scheduler = cases.make_scheduler(models.SDXL_SCHEDULER_CONFIG, cls, {})
        with torch.no_grad():
            pe, ne, pp, np_ = pipe.encode_prompt(prompt, negative_prompt=negative, do_classifier_free_guidance=True)
        if name == "euler" and float((pe - plain[0]).abs().max()) < 1e-3:
            raise AssertionError("the embedding does not change the prompt's conditioning")
        final = pipe(
            prompt=prompt,
            negative_prompt=negative,
            num_inference_steps=steps,
            guidance_scale=guidance,
            width=32,
            height=32,
            generator=torch.Generator("cpu").manual_seed(seed),
            output_type="latent",
        ).images
        records.append({
            "name": name,
            "prompt": prompt,
            "negative_prompt": negative,
            "guidance_scale": guidance,
            "num_inference_steps": steps,
            "width": 32,
            "height": 32,
            "seed": seed,
            "scheduler": cases.scheduler_record(cls, {}, pipe.scheduler),
            "prompt_embeds": writer.array(f"{name}.prompt-embeds", pe[0]),
            "negative_prompt_embeds": writer.array(f"{name}.negative-prompt-embeds", ne[0]),
            "pooled": writer.array(f"{name}.pooled", pp[0]),
            "negative_pooled": writer.array(f"{name}.negative-pooled", np_[0]),
            "final_latents": writer.array(f"{name}.final-latents", final),
        })
    writer.manifest("cases.json", {
        "generator": "tools/make_sdxl_embedding_refs.py",
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__},
        "model": "test/fixtures/tiny-sdxl (torch modules rebuilt from tools/sdxl_fixture_models.py)",
        "rebuilt_vs_onnx_max_abs": onnx_error,
        "trigger": TRIGGER,
        "files": files,
        "conventions": {
            "embedding": f"load_textual_inversion(clip_l, token='{TRIGGER}', text_encoder, tokenizer) and (clip_g, text_encoder_2, tokenizer_2)",
            "bin": "raw little-endian float32, C order, shape in the entry",
            "seed": "torch.Generator('cpu').manual_seed(seed) given to the pipeline",
            "final_latents": "output_type='latent': before / scaling_factor",
        },
        "cases": records,
    })
    print(f"SDXL embedding refs: {len(records)} cases, rebuilt vs ONNX {onnx_error:.2e}")


if __name__ == "__main__":
    main()
