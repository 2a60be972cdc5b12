"""Single-file checkpoints and torch references for the graph builder (src/graphs/): test/fixtures/graphs/.

Per spec (graph_fixture_models.py): the checkpoint's recipe (synthetic_checkpoint.py; the test writes the
file from it and checks its SHA-256), its hashes as A1111 computes them, and the outputs of diffusers' and
transformers' torch modules loaded from that file through diffusers' own single-file converters
(convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint, convert_ldm_clip_checkpoint,
convert_open_clip_checkpoint): text encoder, UNet, VAE, A1111's v-probe, and for sd1/sd2v a short txt2img.
The one-level `mini` model is also saved by torch.save as a training-style .ckpt (committed: mini.ckpt).

Checks on every run: the safetensors library reads the file back with the recipe's values; tools/ldm_keys.py's
diffusers -> ldm renaming inverts diffusers' converters exactly; every module parameter is loaded.

Usage: /opt/diffuse-venv/bin/python tools/make_graph_fixtures.py   (about a minute on 2 cores; deterministic)
"""
from __future__ import annotations

import hashlib
import io
import json
import sys
import types
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diffusers.loaders.single_file_utils import (convert_ldm_clip_checkpoint, convert_ldm_unet_checkpoint,  # noqa: E402
                                                 convert_ldm_vae_checkpoint, convert_open_clip_checkpoint)
from transformers import CLIPTextModel  # noqa: E402

from fixtures_io import RefWriter  # noqa: E402
from graph_fixture_models import SPECS, Spec, ldm_layout, text_config, text_model, unet_model, vae_model  # noqa: E402
from fixtures_models import SD15_SCHEDULER_CONFIG  # noqa: E402
from graph_fixture_refs import probe_ref, text_ids, text_refs, txt2img_ref, unet_refs, vae_refs  # noqa: E402
from gzip_json import write_gzip_text  # noqa: E402
from ldm_keys import clip_to_ldm, open_clip_to_ldm, unet_to_ldm, vae_to_ldm  # noqa: E402
from synthetic_checkpoint import recipe_for, sha256, tensors, to_bytes  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "test" / "fixtures" / "graphs"
TOKENIZER_DIR = REPO / "test" / "fixtures" / "tiny-sd" / "tokenizer"


def a1111_hashes(data: bytes) -> dict[str, str]:
    """modules/hashes.py (sha256, first 10 hex = "Model hash") and sd_models.model_hash (64 KiB at 1 MiB, 8 hex)."""
    return {"sha256": sha256(data), "a1111Hash": sha256(data)[:10], "a1111OldHash": hashlib.sha256(data[0x100000:0x110000]).hexdigest()[:8]}


def check_file(data: bytes, recipe: dict) -> dict[str, torch.Tensor]:
    """The reference reader accepts the file and returns exactly the recipe's tensors."""
    read = load(data)
    expected = tensors(recipe)
    if set(read) != set(expected):
        raise AssertionError("safetensors reads other keys than the recipe's")
    for k, v in expected.items():
        if not torch.equal(read[k], v):
            raise AssertionError(f"safetensors reads {k} differently")
    return expected


def load_modules(spec: Spec, checkpoint: dict[str, torch.Tensor]) -> dict:
    """Modules loaded through diffusers' converters (float32), after checking ldm_keys inverts them exactly."""
    fp32 = {k: v.float() if v.is_floating_point() else v for k, v in checkpoint.items()}
    unet, vae = unet_model(spec), vae_model(spec)
    state = {"unet": convert_ldm_unet_checkpoint(dict(fp32), dict(unet.config)), "vae": convert_ldm_vae_checkpoint(dict(fp32), dict(vae.config))}
    if spec.family == "sd1":
        clip = convert_ldm_clip_checkpoint(dict(fp32))
        clip.pop("text_model.embeddings.position_ids")
        state["text_encoder"], back_text = clip, clip_to_ldm(clip)
    else:
        # The file's OpenCLIP tower has one block more than the model runs (SD 2.x reads the penultimate layer).
        full = CLIPTextModel(text_config(spec, spec.text_layers + 1))
        clip = convert_open_clip_checkpoint(full, dict(fp32))
        back_text = open_clip_to_ldm(clip)
        state["text_encoder"] = {k: v for k, v in clip.items() if not k.startswith(f"text_model.encoder.layers.{spec.text_layers}.")}
    back = {**unet_to_ldm(state["unet"], dict(unet.config)), **vae_to_ldm(state["vae"], len(spec.vae_channels)), **back_text}
    for k, v in back.items():
        if not torch.equal(v.reshape(fp32[k].shape), fp32[k]):
            raise AssertionError(f"{spec.name}: ldm_keys does not invert diffusers' converters at {k}")
    unused = set(fp32) - set(back)
    if not all(k.startswith(("alphas_cumprod", "cond_stage_model.model.text_projection", "cond_stage_model.model.logit_scale", "cond_stage_model.transformer.text_model.embeddings.position_ids")) for k in unused):
        raise AssertionError(f"{spec.name}: checkpoint tensors no component reads: {sorted(unused)[:5]}")
    text = text_model(spec)
    unet.load_state_dict(state["unet"], strict=True)
    vae.load_state_dict(state["vae"], strict=True)
    text.load_state_dict(state["text_encoder"], strict=True)
    return {"unet": unet, "vae": vae, "text_encoder": text}


class ModelCheckpoint:
    """Stands in for pytorch_lightning's callback, which SD 1.x's original .ckpt files pickle."""


def lightning_ckpt(checkpoint: dict[str, torch.Tensor]) -> bytes:
    for name in ("pytorch_lightning", "pytorch_lightning.callbacks", "pytorch_lightning.callbacks.model_checkpoint"):
        sys.modules.setdefault(name, types.ModuleType(name))
    module = sys.modules["pytorch_lightning.callbacks.model_checkpoint"]
    module.ModelCheckpoint = ModelCheckpoint
    ModelCheckpoint.__module__ = module.__name__
    callback = ModelCheckpoint()
    callback.__dict__.update({"monitor": None, "best_model_score": None})
    buffer = io.BytesIO()
    torch.save({"state_dict": checkpoint, "global_step": 470000, "epoch": np.int64(6), "callbacks": {"ModelCheckpoint": callback}}, buffer)
    return buffer.getvalue()


def diffusers_folder(spec: Spec, recipe: dict, modules: dict) -> dict:
    """The same weights as a diffusers (PyTorch) folder: per component a recipe whose tensors take the single file's
    value streams under diffusers' names (ldm_keys renames each back to its single-file key), and the configs."""
    stream = {entry[0]: t for t, entry in enumerate(recipe["tensors"])}
    by_key = {entry[0]: entry for entry in recipe["tensors"]}
    files = {}
    for part, file, state, to_ldm in (
        ("unet", "unet/diffusion_pytorch_model.safetensors", modules["unet"].state_dict(), lambda d: unet_to_ldm(d, dict(modules["unet"].config))),
        ("vae", "vae/diffusion_pytorch_model.safetensors", modules["vae"].state_dict(), lambda d: vae_to_ldm(d, len(spec.vae_channels))),
        ("text_encoder", "text_encoder/model.safetensors", modules["text_encoder"].state_dict(), clip_to_ldm),
    ):
        entries = []
        for name, tensor in state.items():
            (ldm,) = to_ldm({name: tensor}).keys()
            source = by_key[ldm]
            entries.append([name, source[1], list(tensor.shape), *source[3:6], stream[ldm]])
        files[file] = {"seed": recipe["seed"], "tensors": entries}
        got = tensors(files[file])
        for name, tensor in state.items():
            if not torch.equal(got[name].float(), tensor):
                raise AssertionError(f"diffusers folder recipe: {name} differs from the loaded module's")
    configs = {
        "model_index.json": {"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.32.2"},
        "unet/config.json": dict(modules["unet"].config),
        "vae/config.json": dict(modules["vae"].config),
        "text_encoder/config.json": modules["text_encoder"].config.to_dict(),
        "scheduler/scheduler_config.json": {"_class_name": "PNDMScheduler", **SD15_SCHEDULER_CONFIG, "prediction_type": spec.prediction},
    }
    # diffusers' private keys (_use_default_values is a set, in no fixed order) are left out, as diffusers ignores them.
    public = {path: {k: v for k, v in config.items() if not k.startswith("_use")} for path, config in configs.items()}
    return {"files": files, "configs": json.loads(json.dumps(public, default=list))}


def build(spec: Spec, writer: RefWriter) -> dict:
    layout, integers = ldm_layout(spec)
    recipe = recipe_for(spec.seed, layout, spec.dtype, integers)
    data = to_bytes(recipe)
    checkpoint = check_file(data, recipe)
    modules = load_modules(spec, checkpoint)
    write_gzip_text(OUT / f"{spec.name}.recipe.json.gz", json.dumps(recipe, separators=(",", ":")))
    entry: dict = {
        "name": spec.name, "family": spec.family, "dtype": spec.dtype, "bytes": len(data), **a1111_hashes(data),
        "text": text_refs(writer, spec, modules["text_encoder"], text_ids(spec, TOKENIZER_DIR)),
        "unet": unet_refs(writer, spec, modules["unet"]),
        "vae": vae_refs(writer, spec, modules["vae"]),
    }
    if spec.family == "sd2" and spec.in_channels == 4:
        entry["probe"] = probe_ref(modules["unet"], spec)
    if spec.name in ("sd1", "sd2v"):
        entry["txt2img"] = txt2img_ref(writer, spec, modules, TOKENIZER_DIR)
    if spec.name == "sd1":
        write_gzip_text(OUT / "sd1.diffusers.json.gz", json.dumps(diffusers_folder(spec, recipe, modules), separators=(",", ":")))
    if spec.name == "mini":
        (OUT / "mini.ckpt").write_bytes(lightning_ckpt(checkpoint))
    return entry


def main() -> None:
    torch.set_num_threads(2)
    writer = RefWriter(OUT)
    entries = [build(spec, writer) for spec in SPECS]
    # RefWriter owns the folder: the recipes and the .ckpt are written after it (re)created it.
    writer.manifest("cases.json", {"conventions": "recipes: tools/synthetic_checkpoint.py; inputs: values(seed, index) in [-1, 1); arrays: float32 .bin", "models": entries})
    size = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {OUT} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
