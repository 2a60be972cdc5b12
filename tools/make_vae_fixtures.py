"""VAE files, TAESD and the preview's latent->RGB factors: test/fixtures/vae-files/.

- A small AutoencoderKL (32/64 channels, 2 resnets per level, 32 groups: SD's VAE in miniature) as the files
  A1111 users swap in: the LDM layout without prefix (vae-ft-mse-840000-ema-pruned.safetensors,
  sdxl_vae.safetensors; with the `model_ema.*` and `loss.*` extras such files carry) and a diffusers folder
  whose mid attention still has the deprecated `query/key/value/proj_attn` names (sd-vae-ft-mse's
  diffusion_pytorch_model.safetensors). References: diffusers' AutoencoderKL loaded from the LDM file by
  `from_single_file` (decoder, encoder) and the image it decodes from tiny-sd's PNDM final latents; the
  diffusers folder is checked to load (diffusers renames the old attention keys) into the same numbers.
- TAESD at its real size (64 channels, 1/3/3/3 encoder and 3/3/3/1 decoder blocks) as the original
  taesd_decoder/taesd_encoder files (madebyollin/taesd's layout) and as diffusers' AutoencoderTiny
  diffusion_pytorch_model.safetensors (decoder.layers.*, encoder.layers.*): the same values. References:
  AutoencoderTiny's decode and encode; the original files are checked to rename exactly into it.
- ComfyUI's latent2rgb factors (comfy/latent_formats.py, SD15 and SDXL) and the preview pixels its
  Latent2RGBPreviewer makes of a latent, read from a ComfyUI checkout (COMFYUI_DIR; nothing of it is copied here:
  the class and function are lifted out of latent_preview.py with `ast`).

Weights are recipes (tools/synthetic_checkpoint.py): the test writes the files; only outputs are committed.

Usage: COMFYUI_DIR=<ComfyUI checkout> [COMFYUI_COMMIT=<its commit>] /opt/diffuse-venv/bin/python tools/make_vae_fixtures.py   (deterministic)
"""
from __future__ import annotations

import ast
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diffusers import AutoencoderKL, AutoencoderTiny  # noqa: E402
from diffusers.image_processor import VaeImageProcessor  # noqa: E402

from fixtures_io import RefWriter  # noqa: E402
from gzip_json import write_gzip_text  # noqa: E402
from ldm_keys import VAE_PREFIX, vae_to_ldm  # noqa: E402
from synthetic_checkpoint import recipe_for, sha256, tensors, to_bytes, values  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "test" / "fixtures" / "vae-files"
PIPELINE = REPO / "test" / "fixtures" / "pipeline"
KL_SEED, TAESD_SEED, PREVIEW_SEED = 31, 32, 33
# Deprecated diffusers attention names (diffusers < 0.14 saved these; from_pretrained still renames them).
LEGACY_ATTENTION = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}


def draw(seed: int, index: int, shape: list[int]) -> torch.Tensor:
    """Uniform in [-1, 1), the test's syntheticInput(seed, index, shape)."""
    return torch.from_numpy(values(seed, index, int(np.prod(shape)), 0, 0.0).astype(np.float32)).reshape(shape)


def kl_config() -> dict:
    return dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                block_out_channels=(32, 64), layers_per_block=2, latent_channels=4, norm_num_groups=32, sample_size=32, scaling_factor=0.18215)


def streams_under(names: dict[str, str], recipe: dict, dtype: str, shapes: dict[str, list[int]] | None = None) -> dict:
    """A recipe of the same values under other names (new name -> the `recipe` entry named names[new]), stored as
    `dtype` (the values are exact in F32, F16 and BF16) and optionally reshaped (1x1 convolutions as Linear)."""
    index = {entry[0]: t for t, entry in enumerate(recipe["tensors"])}
    by_key = {entry[0]: entry for entry in recipe["tensors"]}
    return {"seed": recipe["seed"], "tensors": [[new, dtype, (shapes or {}).get(new, by_key[old][2]), *by_key[old][3:6], index[old]]
                                                for new, old in names.items()]}


def legacy_name(name: str) -> str:
    head, _, rest = name.partition(".mid_block.attentions.0.")
    if not rest:
        return name
    for new, old in LEGACY_ATTENTION.items():
        if rest.startswith(new + "."):
            return f"{head}.mid_block.attentions.0.{old}{rest[len(new):]}"
    return name


@torch.no_grad()
def kl(w: RefWriter, work: Path) -> dict:
    model = AutoencoderKL(**kl_config()).eval()
    ldm = {k[len(VAE_PREFIX):]: v for k, v in vae_to_ldm(model.state_dict(), 2).items()}
    # What real VAE files carry besides the weights (A1111 drops loss.* and model_ema.*).
    ldm["model_ema.decay"] = torch.zeros(())
    ldm["loss.logvar"] = torch.zeros(())
    recipe = recipe_for(KL_SEED, ldm, "F16")
    data = to_bytes(recipe)
    (work / "kl.safetensors").write_bytes(data)
    config_dir = work / "kl-config"
    config_dir.mkdir()
    (config_dir / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL", **kl_config()}))
    vae = AutoencoderKL.from_single_file(str(work / "kl.safetensors"), config=str(config_dir), local_files_only=True).float().eval()

    # The diffusers folder: diffusers' names with the old attention names, F32, the same value streams.
    to_ldm = {k: next(iter(vae_to_ldm({k: v}, 2)))[len(VAE_PREFIX):] for k, v in model.state_dict().items()}
    shapes = {legacy_name(k): list(v.shape) for k, v in model.state_dict().items()}
    legacy = streams_under({legacy_name(k): to_ldm[k] for k in model.state_dict()}, recipe, "F32", shapes)
    folder = work / "kl-diffusers"
    folder.mkdir()
    (folder / "diffusion_pytorch_model.safetensors").write_bytes(to_bytes(legacy))
    (folder / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL", **kl_config()}))
    other = AutoencoderKL.from_pretrained(str(folder), local_files_only=True).eval()
    for k, v in vae.state_dict().items():
        if not torch.equal(other.state_dict()[k], v):
            raise AssertionError(f"the legacy diffusers folder loads {k} differently from the LDM file")

    latents_shape, image_shape = [1, 4, 7, 9], [1, 3, 14, 18]
    latents, image = draw(KL_SEED, 3000, latents_shape), draw(KL_SEED, 3001, image_shape)
    case = next(c for c in json.loads((PIPELINE / "cases.json").read_text())["txt2img"] if c["name"] == "pndm")
    final = torch.from_numpy(np.fromfile(PIPELINE / case["final_latents"]["file"], dtype="<f4").reshape(case["final_latents"]["shape"]))
    decoded = vae.decode(final / vae.config.scaling_factor).sample
    pixels = VaeImageProcessor(vae_scale_factor=2).postprocess(decoded, output_type="np")
    return {
        "ldm": {"recipe": "kl.recipe.json.gz", "sha256": sha256(data), "bytes": len(data)},
        "diffusers": {"recipe": "kl-diffusers.recipe.json.gz", "config": {"_class_name": "AutoencoderKL", **kl_config()}},
        "decoder": {"latent_sample": {"index": 3000, "shape": latents_shape}, "sample": w.array("kl.decoded", vae.decode(latents).sample)},
        "encoder": {"sample": {"index": 3001, "shape": image_shape}, "latent_parameters": w.array("kl.parameters", vae.encode(image).latent_dist.parameters)},
        "pipeline": {"case": "pndm", "image": w.array("kl.pndm.image", pixels)},
        "_recipes": {"kl.recipe.json.gz": recipe, "kl-diffusers.recipe.json.gz": legacy},
    }


def taesd_original_name(name: str) -> str:
    """diffusers' AutoencoderTiny names -> madebyollin/taesd's files (the decoder's Sequential starts with Clamp)."""
    side, _, rest = name.partition(".layers.")
    index, _, tail = rest.partition(".")
    return f"{int(index) + (1 if side == 'decoder' else 0)}.{tail}"


def tiny_files(model: AutoencoderTiny, seed: int) -> tuple[dict, dict]:
    """The module's recipe (diffusers' names, F32; loaded into it) and the original decoder/encoder files' recipes."""
    state = model.state_dict()
    recipe = recipe_for(seed, state, "F32")
    model.load_state_dict(tensors(recipe), strict=True)
    files = {}
    for side in ("decoder", "encoder"):
        names = {taesd_original_name(k): k for k in state if k.startswith(side + ".")}
        files[side] = streams_under(names, recipe, "F16")
        # The original file's tensors, renamed back, are the module's.
        for k, v in tensors(files[side]).items():
            if not torch.equal(v.float(), model.state_dict()[names[k]]):
                raise AssertionError(f"taesd_{side}: {k} does not rename into AutoencoderTiny")
    return recipe, files


@torch.no_grad()
def taesd(w: RefWriter) -> dict:
    model = AutoencoderTiny().eval()
    recipe, files = tiny_files(model, TAESD_SEED)
    latents_shape, image_shape = [1, 4, 6, 5], [1, 3, 48, 40]
    latents, image = draw(TAESD_SEED, 4000, latents_shape), draw(TAESD_SEED, 4001, image_shape)
    decoded = model.decode(latents).sample
    encoded = model.encode(image).latents
    for what, t in (("decoded", decoded), ("encoded", encoded)):
        if float(t.std()) < 1e-3:
            raise AssertionError(f"TAESD {what}: constant output")
    return {
        "diffusers": {"recipe": "taesd.recipe.json.gz", "config": {"_class_name": "AutoencoderTiny", **{k: v for k, v in dict(model.config).items() if not k.startswith("_")}}},
        "original": {"decoder": "taesd_decoder.recipe.json.gz", "encoder": "taesd_encoder.recipe.json.gz"},
        "decoder": {"latent_sample": {"index": 4000, "shape": latents_shape}, "sample": w.array("taesd.decoded", decoded)},
        "encoder": {"sample": {"index": 4001, "shape": image_shape}, "latents": w.array("taesd.encoded", encoded)},
        "_recipes": {"taesd.recipe.json.gz": recipe, "taesd_decoder.recipe.json.gz": files["decoder"], "taesd_encoder.recipe.json.gz": files["encoder"]},
    }


@torch.no_grad()
def taesd_mini(w: RefWriter) -> dict:
    """TAESD with one upsampling (2 pixels per latent, as tiny-sd's VAE): the decoder tiny-sd's pipeline tests swap in,
    and the image it decodes from tiny-sd's PNDM final latents (AutoencoderTiny's scaling factor is 1)."""
    model = AutoencoderTiny(encoder_block_out_channels=(16, 16), decoder_block_out_channels=(16, 16), num_encoder_blocks=(1, 1),
                            num_decoder_blocks=(1, 1)).eval()
    _, files = tiny_files(model, TAESD_SEED + 100)
    case = next(c for c in json.loads((PIPELINE / "cases.json").read_text())["txt2img"] if c["name"] == "pndm")
    final = torch.from_numpy(np.fromfile(PIPELINE / case["final_latents"]["file"], dtype="<f4").reshape(case["final_latents"]["shape"]))
    decoded = model.decode(final / model.config.scaling_factor).sample
    pixels = VaeImageProcessor(vae_scale_factor=2).postprocess(decoded, output_type="np")
    return {
        "original": {"decoder": "taesd-mini_decoder.recipe.json.gz", "encoder": "taesd-mini_encoder.recipe.json.gz"},
        "pipeline": {"case": "pndm", "image": w.array("taesd-mini.pndm.image", pixels)},
        "_recipes": {"taesd-mini_decoder.recipe.json.gz": files["decoder"], "taesd-mini_encoder.recipe.json.gz": files["encoder"]},
    }


def lifted(path: Path, names: set[str], namespace: dict) -> dict:
    """Runs only the named top-level functions/classes of a file (its imports are left out)."""
    tree = ast.parse(path.read_text())
    body = [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in names]
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), namespace)  # noqa: S102
    return namespace


@torch.no_grad()
def latent2rgb() -> dict:
    comfy = Path(os.environ["COMFYUI_DIR"])
    spec = importlib.util.spec_from_file_location("comfy_latent_formats", comfy / "comfy" / "latent_formats.py")
    formats = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(formats)
    from PIL import Image
    space = lifted(comfy / "latent_preview.py", {"preview_to_image", "LatentPreviewer", "Latent2RGBPreviewer"}, {"torch": torch, "Image": Image})
    out = {}
    for name, cls in (("sd15", formats.SD15), ("sdxl", formats.SDXL)):
        fmt = cls()
        previewer = space["Latent2RGBPreviewer"](fmt.latent_rgb_factors, fmt.latent_rgb_factors_bias)
        x0 = draw(PREVIEW_SEED, 5000, [1, 4, 6, 5]) * 2
        pixels = np.asarray(previewer.decode_latent_to_preview(x0))
        out[name] = {"factors": fmt.latent_rgb_factors, "bias": fmt.latent_rgb_factors_bias, "scale_factor": fmt.scale_factor,
                     "x0": {"index": 5000, "shape": [1, 4, 6, 5], "times": 2}, "pixels": pixels.astype(int).tolist()}
    return out


def main() -> None:
    torch.set_num_threads(2)
    writer = RefWriter(OUT)
    with tempfile.TemporaryDirectory() as tmp:
        kl_entry = kl(writer, Path(tmp))
    taesd_entry = taesd(writer)
    mini_entry = taesd_mini(writer)
    for entry in (kl_entry, taesd_entry, mini_entry):
        for file, recipe in entry.pop("_recipes").items():
            write_gzip_text(OUT / file, json.dumps(recipe, separators=(",", ":")))
    writer.manifest("cases.json", {
        "conventions": "recipes: tools/synthetic_checkpoint.py; inputs: values(seed, index) in [-1, 1); arrays: float32 .bin; "
                       "kl.pndm.image: NHWC in [0, 1] before uint8, decoded from pipeline/txt2img.pndm.final-latents.bin",
        "seeds": {"kl": KL_SEED, "taesd": TAESD_SEED, "preview": PREVIEW_SEED},
        "comfyui": os.environ.get("COMFYUI_COMMIT", "unrecorded"),
        "kl": kl_entry, "taesd": taesd_entry, "taesd_mini": mini_entry, "latent2rgb": latent2rgb(),
    })
    size = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {OUT} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
