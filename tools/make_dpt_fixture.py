"""Build the tiny DPT depth-estimator fixture and DPTImageProcessor / DPTForDepthEstimation references.

Usage: /opt/diffuse-venv/bin/python tools/make_dpt_fixture.py
Writes test/fixtures/tiny-dpt/ (diffusers-style component folders: depth_estimator/ = a random-weight non-hybrid
DPTForDepthEstimation exported to ONNX with optimum, feature_extractor*/ = DPTImageProcessor configs) and
test/fixtures/depth-estimator/ (input PNGs, the processor's pixel_values, the model's predicted_depth, cases.json).
Deterministic: fixed seeds, single-threaded torch; a rerun rewrites byte-identical files.
"""
from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import PIL
import torch
import transformers
from PIL import Image
from torch import nn
from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor
from transformers.models.dpt.image_processing_dpt import get_resize_output_image_size

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fixtures_onnx as onnx_tools  # noqa: E402
from fixtures_io import RefWriter, to_json_value  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "test" / "fixtures"
TINY_DPT = FIXTURES / "tiny-dpt"
REFS = FIXTURES / "depth-estimator"
WORK = Path("/tmp/diffuse-fixtures")

MODEL_SEED = 11
WEIGHT_SEED = 12
MAX_TINY_DPT_MB = 2.0
ONNX_ATOL = 1e-4
# Processor size of the SD2-like config; the model's position embeddings are trained (here: drawn) for it.
PROCESSOR_SIDE = 64
PATCH_SIZE = 16

# Non-hybrid ViT DPT. The neck needs exactly 4 backbone features (one per reassemble stage) and DPTForDepthEstimation
# keeps hidden_states[1:][i] for i in backbone_out_indices, so 4 layers is the minimum.
DPT_CONFIG = dict(
    hidden_size=32,
    num_hidden_layers=4,
    num_attention_heads=2,
    intermediate_size=64,
    image_size=PROCESSOR_SIDE,
    patch_size=PATCH_SIZE,
    backbone_out_indices=[0, 1, 2, 3],
    neck_hidden_sizes=[8, 16, 32, 32],
    fusion_hidden_size=16,
    use_auxiliary_head=False,
)

# Component folder -> preprocessor_config.json, written verbatim. "feature_extractor" mirrors what
# stabilityai/stable-diffusion-2-depth ships as far as known offline: the legacy DPTFeatureExtractor format (integer
# `size`, no rescale keys, so DPTImageProcessor's defaults apply), squashed to a square, mean/std 0.5.
PROCESSOR_CONFIGS: dict[str, dict[str, object]] = {
    "feature_extractor": {
        "do_normalize": True,
        "do_resize": True,
        "ensure_multiple_of": 1,
        "feature_extractor_type": "DPTFeatureExtractor",
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
        "keep_aspect_ratio": False,
        "resample": 3,
        "size": PROCESSOR_SIDE,
    },
    # Current DPTImageProcessor format, MiDaS-style aspect-preserving resize (multiple of 32, as MiDaS's own
    # transform) and per-channel ImageNet mean/std, to exercise every field.
    "feature_extractor-keep-aspect": {
        "do_normalize": True,
        "do_pad": False,
        "do_rescale": True,
        "do_resize": True,
        "ensure_multiple_of": 32,
        "image_mean": [0.485, 0.456, 0.406],
        "image_processor_type": "DPTImageProcessor",
        "image_std": [0.229, 0.224, 0.225],
        "keep_aspect_ratio": True,
        "resample": 3,
        "rescale_factor": 1 / 255,
        "size": {"height": PROCESSOR_SIDE, "width": PROCESSOR_SIDE},
        "size_divisor": None,
    },
}
# The same with PIL bilinear: the older DPTFeatureExtractor default, which a Hub config may have saved.
PROCESSOR_CONFIGS["feature_extractor-bilinear"] = {**PROCESSOR_CONFIGS["feature_extractor"], "resample": 2}

# (name, width, height, seed): upscales, a downscale, odd sizes; "tie-160x128" hits constrain_to_multiple_of's
# round(2.5) under keep_aspect_ratio (Python rounds half to even: 2 -> width 64, half-up would give 96).
IMAGES = [
    ("square-32x32", 32, 32, 1),
    ("wide-48x32", 48, 32, 2),
    ("odd-37x53", 37, 53, 3),
    ("tie-160x128", 160, 128, 4),
]

EFFECTIVE_KEYS = (
    "do_resize", "size", "keep_aspect_ratio", "ensure_multiple_of", "resample", "do_rescale", "rescale_factor",
    "do_normalize", "image_mean", "image_std", "do_pad", "size_divisor",
)


def build_model() -> DPTForDepthEstimation:
    """DPT with weights that carry signal: DPT's own init (std 0.02, zero biases, zero position embeddings) gives
    depth maps of ~1e-9, all but constant, and its final ReLU zeroes most pixels."""
    torch.manual_seed(MODEL_SEED)
    model = DPTForDepthEstimation(DPTConfig(**DPT_CONFIG)).eval()
    g = torch.Generator("cpu").manual_seed(WEIGHT_SEED)
    with torch.no_grad():
        for _, module in sorted(model.named_modules()):
            if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                # Variance-preserving scale; the reassemble ConvTranspose2d has stride == kernel, so each output
                # pixel sees in_channels inputs (weight dim 0).
                fan_in = module.weight.shape[0] if isinstance(module, nn.ConvTranspose2d) else module.weight[0].numel()
                module.weight.normal_(0.0, 1.0 / math.sqrt(fan_in), generator=g)
                if module.bias is not None:
                    module.bias.normal_(0.0, 0.1, generator=g)
        embeddings = model.dpt.embeddings
        embeddings.position_embeddings.normal_(0.0, 1.0, generator=g)
        embeddings.cls_token.normal_(0.0, 1.0, generator=g)
        # Non-negative last 1x1 conv over ReLU features plus a positive bias: the final ReLU never clips, so every
        # depth pixel carries the whole computation (as a real MiDaS output, which is positive).
        last = model.head.head[4]
        last.weight.abs_()
        last.bias.fill_(0.1)
    return model


def export_model(model: DPTForDepthEstimation) -> Path:
    from optimum.exporters.onnx import main_export

    torch_dir = WORK / "tiny-dpt-torch"
    onnx_dir = WORK / "tiny-dpt-onnx"
    for d in (torch_dir, onnx_dir):
        if d.exists():
            shutil.rmtree(d)
    model.save_pretrained(str(torch_dir), safe_serialization=True)
    main_export(
        str(torch_dir),
        output=str(onnx_dir),
        task="depth-estimation",
        dtype="fp32",
        device="cpu",
        library_name="transformers",
        do_validation=True,
        local_files_only=True,
    )
    return onnx_dir


def write_components(onnx_dir: Path) -> None:
    if TINY_DPT.exists():
        shutil.rmtree(TINY_DPT)
    estimator = TINY_DPT / "depth_estimator"
    estimator.mkdir(parents=True)
    for file in ("model.onnx", "config.json"):
        shutil.copy(onnx_dir / file, estimator / file)
    for folder, config in PROCESSOR_CONFIGS.items():
        (TINY_DPT / folder).mkdir()
        text = json.dumps(config, indent=2, sort_keys=True, allow_nan=False) + "\n"
        (TINY_DPT / folder / "preprocessor_config.json").write_text(text)


def load_processor(folder: str) -> DPTImageProcessor:
    """As diffusers loads the component; must equal DPTImageProcessor(**config) on the same JSON."""
    processor = DPTImageProcessor.from_pretrained(str(TINY_DPT / folder))
    direct = DPTImageProcessor(**PROCESSOR_CONFIGS[folder])
    for key in EFFECTIVE_KEYS:
        if getattr(processor, key) != getattr(direct, key):
            raise AssertionError(f"{folder}: from_pretrained and DPTImageProcessor(**config) disagree on {key}")
    return processor


def effective_settings(processor: DPTImageProcessor) -> dict[str, object]:
    settings = {key: to_json_value(getattr(processor, key)) for key in EFFECTIVE_KEYS}
    settings["resample"] = int(processor.resample)
    return settings


def synthetic_image(width: int, height: int, seed: int) -> Image.Image:
    """Smooth ramps and a ripple (bicubic overshoot material) plus seeded noise (no flat regions)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    noise = np.random.default_rng(seed).integers(-24, 25, size=(height, width, 3))
    base = np.stack([
        255 * x / max(width - 1, 1),
        255 * y / max(height - 1, 1),
        127.5 + 127.5 * np.sin((x + 2 * y) * 0.7 + seed),
    ], axis=-1)
    return Image.fromarray(np.clip(np.rint(base) + noise, 0, 255).astype(np.uint8), mode="RGB")


def fit_side(processor: DPTImageProcessor, width: int, height: int) -> str | None:
    """Which side get_resize_output_image_size keeps the scale of (its `abs(1 - scale)` comparison)."""
    if not processor.keep_aspect_ratio:
        return None
    scale_w = processor.size["width"] / width
    scale_h = processor.size["height"] / height
    return "width" if abs(1 - scale_w) < abs(1 - scale_h) else "height"


def replay_processor(processor: DPTImageProcessor, image: Image.Image, size: tuple[int, int]) -> tuple[Image.Image, np.ndarray]:
    """The documented rule, step by step: PIL resize of the uint8 image, then float64 x * rescale_factor cast to
    float32, then float32 (x - mean) / std per channel; NCHW."""
    resized = image.resize((size[1], size[0]), resample=processor.resample)
    x = (np.asarray(resized).astype(np.float64) * processor.rescale_factor).astype(np.float32)
    mean = np.asarray(processor.image_mean, dtype=np.float32)
    std = np.asarray(processor.image_std, dtype=np.float32)
    return resized, ((x - mean) / std).transpose(2, 0, 1)[None]


def onnx_session() -> ort.InferenceSession:
    path = TINY_DPT / "depth_estimator" / "model.onnx"
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def check_random_inputs(model: DPTForDepthEstimation, session: ort.InferenceSession) -> dict[str, float]:
    """Several square sizes through one graph: the height/width axes really are dynamic."""
    errors: dict[str, float] = {}
    g = torch.Generator("cpu").manual_seed(1234)
    for side in (32, 64, 96):
        x = torch.rand(2, 3, side, side, generator=g) * 2 - 1
        with torch.no_grad():
            want = model(x).predicted_depth.numpy()
        got = session.run(["predicted_depth"], {"pixel_values": x.numpy()})[0]
        errors[f"random-2x3x{side}x{side}"] = max_abs("random input", got, want)
    return errors


def max_abs(what: str, got: np.ndarray, want: np.ndarray) -> float:
    if got.shape != want.shape:
        raise AssertionError(f"{what}: ONNX shape {got.shape} != torch {want.shape}")
    err = float(np.abs(got - want).max())
    if not err < ONNX_ATOL:
        raise AssertionError(f"{what}: ONNX differs from torch by {err} >= {ONNX_ATOL}")
    return err


def model_accepts(height: int, width: int) -> bool:
    # Square only: the ViT neck reshapes the token sequence to sqrt(len) x sqrt(len). Even patch grid only: the
    # 0.5x reassemble stage halves the grid with a stride-2 conv, and an odd grid's size mismatch is fixed by an
    # interpolate that tracing does not record, so the ONNX graph lacks it.
    return height == width and height % (2 * PATCH_SIZE) == 0


def run_case(model, session, processor, folder: str, name: str, image: Image.Image, writer: RefWriter) -> dict[str, object]:
    prefix = f"{name}.{folder}"
    size = get_resize_output_image_size(
        np.asarray(image), (processor.size["height"], processor.size["width"]),
        processor.keep_aspect_ratio, processor.ensure_multiple_of,
    )
    pixel_values = processor(images=image, return_tensors="pt").pixel_values
    if tuple(pixel_values.shape) != (1, 3, *size):
        raise AssertionError(f"{prefix}: pixel_values {tuple(pixel_values.shape)} vs computed size {size}")
    resized, replayed = replay_processor(processor, image, size)
    if not np.array_equal(replayed, pixel_values.numpy()):
        raise AssertionError(f"{prefix}: the step-by-step replay is not bit-identical to DPTImageProcessor")
    record: dict[str, object] = {
        "image": name,
        "processor": folder,
        "fit": fit_side(processor, *image.size),
        "resized_size": {"height": size[0], "width": size[1]},
        "resized_png": writer.png(f"{prefix}.resized", resized),
        "pixel_values": writer.array(f"{prefix}.pixel-values", pixel_values),
    }
    if not model_accepts(*size):
        record["predicted_depth"] = None
        return record
    with torch.no_grad():
        depth = model(pixel_values).predicted_depth
    if not (float(depth.min()) > 0 and float(depth.std()) > 0.1):
        raise AssertionError(f"{prefix}: degenerate depth map (min {float(depth.min())}, std {float(depth.std())})")
    got = session.run(["predicted_depth"], {"pixel_values": pixel_values.numpy()})[0]
    record["predicted_depth"] = writer.array(f"{prefix}.predicted-depth", depth)
    record["onnx_max_abs"] = max_abs(prefix, got, depth.numpy())
    return record


def write_images(writer: RefWriter) -> list[tuple[dict[str, object], Image.Image]]:
    """Each image saved as PNG and read back, so the reference starts from the exact file the TS side decodes."""
    out = []
    for name, width, height, seed in IMAGES:
        image = synthetic_image(width, height, seed)
        file = writer.png(name, image)
        with Image.open(writer.out_dir / file) as f:
            read_back = f.convert("RGB") if f.mode != "RGB" else f.copy()
        if not np.array_equal(np.asarray(read_back), np.asarray(image)):
            raise AssertionError(f"{file}: PNG round trip changed pixels")
        out.append(({"name": name, "png": file, "width": width, "height": height}, read_back))
    return out


def write_readme(graphs: str, errors: dict[str, float], size_mb: float) -> None:
    config = ", ".join(f"{k}={v}" for k, v in DPT_CONFIG.items())
    (TINY_DPT / "README.md").write_text(
        "<!-- generated by tools/make_dpt_fixture.py; do not edit -->\n\n"
        "# tiny-dpt: random-weight DPT depth estimator (stable-diffusion-2-depth's depth_estimator/ + feature_extractor/)\n\n"
        f"`depth_estimator/`: transformers `DPTForDepthEstimation`, non-hybrid ViT ({config}); weights drawn with seeds "
        f"{MODEL_SEED}/{WEIGHT_SEED} at variance-preserving scale, last head conv non-negative so the output ReLU never "
        "clips. Exported by optimum (task depth-estimation, fp32). Accepts square inputs whose side is a multiple of "
        f"{2 * PATCH_SIZE} only (the real DPT-Hybrid is square-only too; its processor squashes to 384x384).\n\n"
        "`feature_extractor/`: SD2-depth-like legacy DPTFeatureExtractor config (bicubic, squash, mean/std 0.5). "
        "`feature_extractor-bilinear/`: the same with resample 2. `feature_extractor-keep-aspect/`: current "
        "DPTImageProcessor format, keep_aspect_ratio, ensure_multiple_of 32, ImageNet mean/std.\n\n"
        f"## Graphs\n\n{graphs}\n"
        "ONNX Runtime vs torch, max abs error on random inputs: "
        + ", ".join(f"{k} {v:.2e}" for k, v in errors.items()) + f".\n\nFolder size: {size_mb:.2f} MB.\n"
    )


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    WORK.mkdir(parents=True, exist_ok=True)
    model = build_model()
    write_components(export_model(model))
    session = onnx_session()
    errors = check_random_inputs(model, session)
    size_mb = onnx_tools.folder_size_mb(TINY_DPT)
    if size_mb > MAX_TINY_DPT_MB:
        raise AssertionError(f"{TINY_DPT} is {size_mb:.2f} MB > {MAX_TINY_DPT_MB} MB")
    write_readme(onnx_tools.describe_graphs(TINY_DPT, ("depth_estimator",)), errors, size_mb)

    writer = RefWriter(REFS)
    images = write_images(writer)
    processors = {folder: load_processor(folder) for folder in PROCESSOR_CONFIGS}
    cases = [
        run_case(model, session, processor, folder, entry["name"], image, writer)
        for folder, processor in processors.items()
        for entry, image in images
    ]
    writer.manifest("cases.json", {
        "generator": "tools/make_dpt_fixture.py",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "Pillow": PIL.__version__},
        "model": "../tiny-dpt/depth_estimator/model.onnx (DPTForDepthEstimation, torch = the truth)",
        "onnx_vs_torch_max_abs": errors,
        "conventions": {
            "bin": "raw little-endian float32, C order, shape in the entry",
            "images": "RGB PNGs; references computed from the decoded PNG, passed to the processor as a PIL image",
            "processors": "folder under ../tiny-dpt/ -> its preprocessor_config.json as DPTImageProcessor resolved it "
                          "(defaults filled in; size always {height, width}; resample is PIL's filter id)",
            "resized_size": "transformers get_resize_output_image_size(image, (size.height, size.width), "
                            "keep_aspect_ratio, ensure_multiple_of)",
            "fit": "keep_aspect_ratio only: the side whose scale is kept (width if |1 - sw| < |1 - sh| else height)",
            "resized_png": "PIL Image.resize((w, h), resample) of the uint8 RGB image: the processor's resize, exactly",
            "pixel_values": "[1, 3, h, w] = (float32(float64(resized) * rescale_factor) - mean) / std in float32",
            "predicted_depth": "[1, h, w] DPTForDepthEstimation(pixel_values).predicted_depth; null when the model "
                               "cannot take the shape (square with side a multiple of 32 only)",
            "onnx_max_abs": "max |ONNX Runtime - torch| on that case's pixel_values",
        },
        "processors": {folder: effective_settings(p) for folder, p in processors.items()},
        "images": [entry for entry, _ in images],
        "cases": cases,
    })
    print(f"tiny-dpt: {size_mb:.2f} MB, ONNX vs torch {errors}")
    print(f"references: {len(writer.files)} files in {REFS}, {onnx_tools.folder_size_mb(REFS):.2f} MB")


if __name__ == "__main__":
    main()
