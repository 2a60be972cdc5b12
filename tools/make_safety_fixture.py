"""Build the tiny safety-checker fixture and diffusers' StableDiffusionSafetyChecker references.

Usage: /opt/diffuse-venv/bin/python tools/make_safety_fixture.py
Writes test/fixtures/tiny-safety/ with two component pairs in the layout an SD 1.x ONNX folder ships
(diffusers' convert_stable_diffusion_checkpoint_to_onnx.py: `safety_checker/model.onnx` = forward_onnx with inputs
clip_input, images and outputs out_images, has_nsfw_concepts; `feature_extractor/preprocessor_config.json`):
- safety_checker/: a random-weight CLIP vision tower whose concept and special-care embeddings and thresholds are
  set from the crafted pictures below, so that some are flagged (one only through the special-care adjustment) and
  some are clean, every score at least MARGIN away from 0;
- safety_checker-flags-all/: the same tower with every threshold at -1: every picture is flagged;
- feature_extractor/: SD 1.5's own preprocessor_config.json (the legacy CLIPFeatureExtractor format);
  feature_extractor-current/: the same settings in today's CLIPImageProcessor format;
and refs/: the crafted PNGs, the processor's pixel_values per picture (SHA-256 of the float32 bytes and a strided
sample), and for each checker the flags of diffusers' torch `forward` (the pipeline's path, scores rounded to 3
decimals) and of the ONNX graph under onnxruntime, which must agree.
Deterministic: fixed seeds, single-threaded torch; a rerun rewrites byte-identical files.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from PIL import Image
from transformers import CLIPConfig, CLIPImageProcessor

from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker, cosine_distance

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixture_pictures import picture, unit_scale_init  # noqa: E402
from fixtures_io import RefWriter  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT = REPO_ROOT / "test" / "fixtures" / "tiny-safety"
MODEL_SEED = 31
WEIGHT_SEED = 32
# Every score this far from 0, so rounding (torch's path rounds to 3 decimals) and float32 order cannot flip a flag.
MARGIN = 0.004
MAX_FIXTURE_MB = 1.0
SAMPLE_STRIDE = 997

VISION = dict(hidden_size=16, intermediate_size=24, num_hidden_layers=2, num_attention_heads=2, image_size=224, patch_size=32)
TEXT = dict(hidden_size=16, intermediate_size=24, num_hidden_layers=1, num_attention_heads=2, vocab_size=64, max_position_embeddings=16)
PROJECTION_DIM = 16

# stable-diffusion-v1-5's feature_extractor/preprocessor_config.json, as published.
SD15_PROCESSOR = {
    "crop_size": 224,
    "do_center_crop": True,
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "CLIPFeatureExtractor",
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "size": 224,
}
CURRENT_PROCESSOR = {
    "crop_size": {"height": 224, "width": 224},
    "do_center_crop": True,
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": SD15_PROCESSOR["image_mean"],
    "image_processor_type": "CLIPImageProcessor",
    "image_std": SD15_PROCESSOR["image_std"],
    "resample": 3,
    "rescale_factor": 1 / 255,
    "size": {"shortest_edge": 224},
}

# (name, width, height, seed, kind): an upscale, wide and tall pictures (crop on each axis), a downscale, one at 224.
PICTURES = [
    ("clean-64x64", 64, 64, 1, "ramps"),
    ("flagged-96x64", 96, 64, 2, "checks"),
    ("special-flagged-64x80", 64, 80, 3, "rings"),
    ("special-clean-300x232", 300, 232, 4, "stripes"),
    ("clean-224x224", 224, 224, 5, "blobs"),
]
FLAGGED = "flagged-96x64"
SPECIAL_FLAGGED = "special-flagged-64x80"
SPECIAL_CLEAN = "special-clean-300x232"


def build_checker() -> StableDiffusionSafetyChecker:
    torch.manual_seed(MODEL_SEED)
    config = CLIPConfig(text_config=TEXT, vision_config=VISION, projection_dim=PROJECTION_DIM)
    checker = StableDiffusionSafetyChecker(config).eval()
    unit_scale_init(checker, torch.Generator("cpu").manual_seed(WEIGHT_SEED), skip=lambda name: "embeds" in name)
    return checker


def embeds(checker: StableDiffusionSafetyChecker, pixel_values: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return checker.visual_projection(checker.vision_model(pixel_values)[1])


def direction(all_embeds: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    """The unit direction that tells one picture from the mean of the others."""
    unit = {k: v[0] / v[0].norm() for k, v in all_embeds.items()}
    others = torch.stack([v for k, v in unit.items() if k != name]).mean(0)
    d = unit[name] - others
    return d / d.norm()


def set_concepts(checker: StableDiffusionSafetyChecker, all_embeds: dict[str, torch.Tensor]) -> None:
    """Concepts and thresholds: FLAGGED over a concept by 0.02; SPECIAL_FLAGGED 0.005 under one, pushed over by its
    special-care adjustment (+0.01); SPECIAL_CLEAN in special care but under every concept; the rest clean."""
    g = torch.Generator("cpu").manual_seed(WEIGHT_SEED + 1)
    concepts = torch.randn(17, PROJECTION_DIM, generator=g)
    special = torch.randn(3, PROJECTION_DIM, generator=g)
    concepts[3] = direction(all_embeds, FLAGGED)
    concepts[11] = direction(all_embeds, SPECIAL_FLAGGED)
    special[0] = direction(all_embeds, SPECIAL_FLAGGED)
    special[2] = direction(all_embeds, SPECIAL_CLEAN)
    stacked = torch.cat(list(all_embeds.values()))
    with torch.no_grad():
        checker.concept_embeds.copy_(concepts)
        checker.special_care_embeds.copy_(special)
        cos = cosine_distance(stacked, checker.concept_embeds)
        special_cos = cosine_distance(stacked, checker.special_care_embeds)
        names = list(all_embeds)
        weights = cos.max(0).values + 0.05
        special_weights = special_cos.max(0).values + 0.05
        weights[3] = cos[names.index(FLAGGED), 3] - 0.02
        weights[11] = cos[names.index(SPECIAL_FLAGGED), 11] + 0.005
        special_weights[0] = special_cos[names.index(SPECIAL_FLAGGED), 0] - 0.02
        special_weights[2] = special_cos[names.index(SPECIAL_CLEAN), 2] - 0.02
        checker.concept_embeds_weights.copy_(weights)
        checker.special_care_embeds_weights.copy_(special_weights)


def scores(checker: StableDiffusionSafetyChecker, e: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """forward_onnx's concept and special scores (unrounded)."""
    with torch.no_grad():
        special = cosine_distance(e, checker.special_care_embeds) - checker.special_care_embeds_weights
        adjust = torch.any(special > 0, dim=1).float() * 0.01
        concept = cosine_distance(e, checker.concept_embeds) - checker.concept_embeds_weights + adjust[:, None]
    return concept.numpy(), special.numpy()


def export(checker: StableDiffusionSafetyChecker, folder: Path) -> None:
    folder.mkdir(parents=True)
    checker.forward = checker.forward_onnx  # as diffusers' ONNX conversion script exports it
    torch.onnx.export(
        checker,
        (torch.randn(1, 3, 224, 224), torch.randn(1, 64, 64, 3)),
        str(folder / "model.onnx"),
        input_names=["clip_input", "images"],
        output_names=["out_images", "has_nsfw_concepts"],
        dynamic_axes={
            "clip_input": {0: "batch", 1: "channels", 2: "height", 3: "width"},
            "images": {0: "batch", 1: "height", 2: "width", 3: "channels"},
        },
        opset_version=14,
        do_constant_folding=True,
    )
    del checker.forward


def pixel_record(pixel_values: np.ndarray) -> dict[str, object]:
    data = np.ascontiguousarray(pixel_values, dtype="<f4")
    flat = data.reshape(-1)
    return {
        "shape": list(data.shape),
        "sha256": hashlib.sha256(data.tobytes()).hexdigest(),
        "stride": SAMPLE_STRIDE,
        "sample": [float(v) for v in flat[::SAMPLE_STRIDE]],
    }


def main() -> None:
    torch.set_num_threads(1)
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    for folder, config in (("feature_extractor", SD15_PROCESSOR), ("feature_extractor-current", CURRENT_PROCESSOR)):
        (OUT / folder).mkdir()
        (OUT / folder / "preprocessor_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    processors = {f: CLIPImageProcessor.from_pretrained(str(OUT / f)) for f in ("feature_extractor", "feature_extractor-current")}

    writer = RefWriter(OUT / "refs")
    pils: dict[str, Image.Image] = {}
    cases = []
    for name, width, height, seed, kind in PICTURES:
        file = writer.png(name, picture(width, height, seed, kind))
        with Image.open(writer.out_dir / file) as f:
            pils[name] = f.convert("RGB")
        values = {f: p(images=pils[name], return_tensors="np").pixel_values for f, p in processors.items()}
        if not np.array_equal(values["feature_extractor"], values["feature_extractor-current"]):
            raise AssertionError(f"{name}: the two processor formats disagree")
        cases.append({"name": name, "png": file, "width": width, "height": height, "pixel_values": pixel_record(values["feature_extractor"])})

    checker = build_checker()
    clip_inputs = {c["name"]: torch.from_numpy(processors["feature_extractor"](images=pils[c["name"]], return_tensors="np").pixel_values) for c in cases}
    all_embeds = {k: embeds(checker, v) for k, v in clip_inputs.items()}
    set_concepts(checker, all_embeds)
    flags_all = build_checker()
    flags_all.load_state_dict(checker.state_dict())
    with torch.no_grad():
        flags_all.concept_embeds_weights.fill_(-1.0)
        flags_all.special_care_embeds_weights.fill_(-1.0)

    checkers = {"safety_checker": checker, "safety_checker-flags-all": flags_all}
    results: dict[str, dict[str, object]] = {}
    for folder, model in checkers.items():
        results[folder] = {}
        export(model, OUT / folder)
        session = ort.InferenceSession(str(OUT / folder / "model.onnx"), providers=["CPUExecutionProvider"])
        for c in cases:
            name = c["name"]
            image = np.asarray(pils[name], dtype=np.float32)[None] / 255  # the pipeline's [0, 1] NHWC image
            concept, special = scores(model, all_embeds[name])
            if folder == "safety_checker" and min(np.abs(concept).min(), np.abs(special).min()) < MARGIN:
                raise AssertionError(f"{name}: a score within {MARGIN} of 0")
            with torch.no_grad():
                torch_images, torch_flags = model(clip_input=clip_inputs[name], images=image.copy())
            out_images, onnx_flags = session.run(None, {"clip_input": clip_inputs[name].numpy(), "images": image})
            if bool(torch_flags[0]) != bool(onnx_flags[0]):
                raise AssertionError(f"{folder} {name}: torch forward and the ONNX graph disagree")
            if bool(torch_flags[0]) and (np.any(torch_images[0]) or np.any(out_images[0])):
                raise AssertionError(f"{folder} {name}: a flagged picture is not black")
            if not bool(torch_flags[0]) and not np.array_equal(out_images[0], image[0]):
                raise AssertionError(f"{folder} {name}: a clean picture was changed")
            results[folder][name] = {
                "nsfw": bool(torch_flags[0]),
                "special_care": bool((special > 0).any()),
                "concept_scores": [round(float(v), 4) for v in concept[0]],
                "special_scores": [round(float(v), 4) for v in special[0]],
            }
    expected = {FLAGGED: True, SPECIAL_FLAGGED: True}
    for c in cases:
        want = expected.get(c["name"], False)
        if results["safety_checker"][c["name"]]["nsfw"] != want:
            raise AssertionError(f"{c['name']}: flagged {not want}, crafted to be {want}")
        if not results["safety_checker-flags-all"][c["name"]]["nsfw"]:
            raise AssertionError(f"{c['name']}: the flags-all checker let it pass")
    writer.manifest("cases.json", {"pictures": cases, "checkers": results})

    size_mb = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file()) / 2**20
    if size_mb > MAX_FIXTURE_MB:
        raise AssertionError(f"fixture is {size_mb:.2f} MB > {MAX_FIXTURE_MB} MB")
    (OUT / "README.md").write_text(
        "<!-- generated by tools/make_safety_fixture.py; do not edit -->\n\n"
        "# tiny-safety: random-weight StableDiffusionSafetyChecker (SD 1.x's safety_checker/ + feature_extractor/)\n\n"
        f"CLIP vision tower {VISION}, projection {PROJECTION_DIM}; weights drawn with seeds {MODEL_SEED}/{WEIGHT_SEED}; "
        "concepts and thresholds set from the pictures in refs/ (see the script). Exported as diffusers' ONNX "
        "conversion script does (forward_onnx, opset 14). `safety_checker-flags-all/`: every threshold -1.\n\n"
        f"Folder size: {size_mb:.2f} MB.\n"
    )
    print(f"tiny-safety: {size_mb:.2f} MB; flags", {k: v["nsfw"] for k, v in results["safety_checker"].items()})


if __name__ == "__main__":
    main()
