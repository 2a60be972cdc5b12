"""ControlNet weight files for the ControlNet graph builder (src/graphs/controlnet.ts): test/fixtures/controlnet-files/.

Two synthetic-recipe ControlNets (tools/synthetic_checkpoint.py; the test writes the files from the recipes and checks
their SHA-256), and what diffusers 0.32 computes with them:

- `sd1`: a ControlNet of the graph fixtures' sd1 UNet shape (test/fixtures/graphs: widths 32/64, two resnets per level,
  8 heads, 128-wide text) as lllyasviel's/A1111's single files store it: LDM names under `control_model.`, F16, the
  control image embedding with SD's four widths (conv_out is input_hint_block.14, which diffusers' converter expects).
  Loaded with `ControlNetModel.from_single_file` (every parameter checked against the recipe); residuals on two input
  sets. The same values as a diffusers folder (`sd1.diffusers.json.gz`) load with `from_pretrained` to the same
  residuals (checked here, bit for bit).
- `tiny`: a diffusers ControlNet folder (config.json + diffusion_pytorch_model.safetensors) of tiny-sd-control's
  ControlNet config (norm groups 8, widths 16/24, a 2x control embedding): residuals from `from_pretrained`, and
  StableDiffusionControlNetPipeline final latents with tiny-sd-control's UNet (tools/make_controlnet_fixture.py's,
  rebuilt from its seed) and tiny-sd's text encoder and VAE, on test/fixtures/controlnet-pipeline's control pictures.
- `sd1x2`: the sd1 shape with a 2x control embedding as a diffusers folder, and StableDiffusionControlNetPipeline on the
  graph fixtures' sd1 checkpoint (UNet by UNet2DConditionModel.from_single_file): a ControlNet with a UNet diffuse builds
  from a single file, which takes no residuals until ControlNets are loaded (src/onnx/control-residuals.ts).
- `pth`: a one-level ControlNet (32 wide, 32-wide text, SD's 8x control embedding) as lllyasviel's `.pth` files are:
  torch.save of a plain state dict under `control_model.` names, F16 (stored gzipped, `pth.pth.gz`: the test writes the
  exact bytes torch wrote back out and checks their SHA-256). Loaded with `ControlNetModel.from_single_file`; residuals
  on the odd-sized input set. Its recipe (`pth.recipe.json.gz`) writes the same tensors as a .safetensors file.
- `sd1-inpaint`: a 9-channel inpainting checkpoint of the sd1 spec's shape (a synthetic recipe, `sd1-inpaint.recipe.json.gz`,
  loaded through diffusers' single-file converters) with the sd1x2 ControlNet in StableDiffusionControlNetInpaintPipeline:
  the ControlNet reads the 4 latent channels, the UNet those plus mask and masked-image latents (test/fixtures/pipeline's
  init picture and mask, the controlnet-pipeline control pictures).

Inputs are synthetic_checkpoint.values streams (the test recomputes them); outputs are float32 .bin files.
Usage: /opt/diffuse-venv/bin/python tools/make_controlnet_file_fixture.py   (deterministic; a rerun writes the same bytes)
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import sys
import tempfile
from pathlib import Path

import torch
from diffusers import (ControlNetModel, EulerDiscreteScheduler, StableDiffusionControlNetInpaintPipeline, StableDiffusionControlNetPipeline,
                       UNet2DConditionModel)
from PIL import Image
from safetensors.torch import load
from transformers import CLIPTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fixtures_models as models  # noqa: E402
import make_controlnet_fixture as cn_fixture  # noqa: E402
import make_graph_fixtures as graph_fx  # noqa: E402
from fixtures_io import RefWriter  # noqa: E402
from graph_fixture_models import SPECS, ldm_layout  # noqa: E402
from graph_fixture_refs import draw  # noqa: E402
from gzip_json import write_gzip_text  # noqa: E402
from ldm_keys import unet_key  # noqa: E402
from synthetic_checkpoint import recipe_for, sha256, tensors, to_bytes  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "test" / "fixtures" / "controlnet-files"
TINY_SD = REPO / "test" / "fixtures" / "tiny-sd"
PICTURES = REPO / "test" / "fixtures" / "controlnet-pipeline"
INPAINT_INPUTS = REPO / "test" / "fixtures" / "pipeline"
GRAPHS = REPO / "test" / "fixtures" / "graphs"
LDM_PREFIX = "control_model."
SD1_SPEC = next(s for s in SPECS if s.name == "sd1")

SD1 = dict(
    in_channels=4, block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), layers_per_block=2,
    cross_attention_dim=128, attention_head_dim=8, use_linear_projection=False, norm_num_groups=32,
    conditioning_embedding_out_channels=(8, 8, 8, 16),
)
SD1_SEED, TINY_SEED, SD1X2_SEED, PTH_SEED = 21, 22, 23, 25
# The smallest SD-1.x-shaped ControlNet: one level, so the torch.save'd file stays about 300 kB (F16).
PTH = dict(
    in_channels=4, block_out_channels=(32,), down_block_types=("CrossAttnDownBlock2D",), layers_per_block=1,
    cross_attention_dim=32, attention_head_dim=8, use_linear_projection=False, norm_num_groups=32,
    conditioning_embedding_out_channels=(8, 8, 8, 16),
)
# The sd1 spec's shape with SD-inpainting's 9 input channels (4 latents, the mask, 4 masked-image latents).
INPAINT_SPEC = dataclasses.replace(SD1_SPEC, name="sd1-inpaint", seed=24, in_channels=9)

# name, batch, latent height, width, timestep, conditioning scale; the control image is 2^(stages) times the latent size.
RESIDUAL_CASES = [("a", 2, 8, 8, 981.0, 0.7), ("odd", 1, 5, 7, 250.5, 1.0)]


def ldm_key(name: str, config: dict) -> str:
    """diffusers' ControlNetModel parameter -> lllyasviel's name (the inverse of diffusers' convert_controlnet_checkpoint)."""
    stages = len(config["conditioning_embedding_out_channels"]) - 1
    for hf, ldm in (("controlnet_cond_embedding.conv_in.", "input_hint_block.0."),
                    ("controlnet_cond_embedding.conv_out.", f"input_hint_block.{2 * (2 * stages + 1)}."),
                    ("controlnet_mid_block.", "middle_block_out.0.")):
        if name.startswith(hf):
            return ldm + name[len(hf):]
    parts = name.split(".")
    if name.startswith("controlnet_cond_embedding.blocks."):
        return f"input_hint_block.{2 * (int(parts[2]) + 1)}.{'.'.join(parts[3:])}"
    if name.startswith("controlnet_down_blocks."):
        return f"zero_convs.{parts[1]}.0.{'.'.join(parts[2:])}"
    up = [t.replace("Down", "Up") for t in reversed(config["down_block_types"])]
    return unet_key(name, {**config, "up_block_types": up})


def controlnet_config(net: ControlNetModel) -> dict:
    # diffusers' private keys (_use_default_values is a set, in no fixed order) are left out, as diffusers ignores them.
    return json.loads(json.dumps({k: v for k, v in net.config.items() if not k.startswith("_use")}, default=list))


def recipe_of(net: ControlNetModel, seed: int, dtype: str, names) -> dict:
    return recipe_for(seed, {names(k): v for k, v in net.state_dict().items()}, dtype)


def check_loaded(net: ControlNetModel, values: dict[str, torch.Tensor], names) -> None:
    """Every parameter of the loaded module is the recipe's tensor (so the loader read the whole file)."""
    state = net.state_dict()
    if len(state) != len(values):
        raise AssertionError(f"{len(state)} parameters loaded from {len(values)} tensors")
    for k, v in state.items():
        if not torch.equal(v, values[names(k)].float()):
            raise AssertionError(f"{k} is not the file's {names(k)}")


def folder_layout(recipe: dict, config: dict, names) -> dict:
    """The recipe's values under diffusers' names (each entry takes its single-file tensor's value stream)."""
    stream = {entry[0]: t for t, entry in enumerate(recipe["tensors"])}
    by_key = {entry[0]: entry for entry in recipe["tensors"]}
    entries = []
    for name in config["_names"]:
        source = by_key[names(name)]
        entries.append([name, source[1], source[2], *source[3:6], stream[source[0]]])
    return {"files": {"diffusion_pytorch_model.safetensors": {"seed": recipe["seed"], "tensors": entries}},
            "configs": {"config.json": {k: v for k, v in config.items() if k != "_names"}}}


def write_folder(layout: dict, dir: Path) -> None:
    for rel, recipe in layout["files"].items():
        (dir / rel).write_bytes(to_bytes(recipe))
    for rel, config in layout["configs"].items():
        (dir / rel).write_text(json.dumps(config))


@torch.no_grad()
def residuals(net: ControlNetModel, seed: int, cases=RESIDUAL_CASES) -> list[tuple[dict, list[torch.Tensor]]]:
    """Per case its inputs' description and the residuals (down blocks', then the mid block's)."""
    scale = 2 ** (len(net.config.conditioning_embedding_out_channels) - 1)
    out = []
    for case, batch, h, width, t, cond_scale in cases:
        sample = draw(seed, 100, [batch, 4, h, width])
        context = draw(seed, 101, [batch, 7, net.config.cross_attention_dim])
        # The control picture is in [0, 1]: (u + 1) / 2 of a [-1, 1) stream, exact in float32.
        cond = (draw(seed, 102, [batch, 3, h * scale, width * scale]) + 1) / 2
        down, mid = net(sample, torch.tensor([t]), context, cond, conditioning_scale=cond_scale, return_dict=False)
        about = {"name": case, "sample": [batch, 4, h, width], "context": list(context.shape), "cond": list(cond.shape), "timestep": t, "scale": cond_scale}
        out.append((about, [*down, mid]))
    return out


def residual_refs(w: RefWriter, name: str, computed: list[tuple[dict, list[torch.Tensor]]]) -> list[dict]:
    return [{**about, "residuals": [w.array(f"{name}.{about['name']}.{i}", r) for i, r in enumerate(rs)]} for about, rs in computed]


def single_file_recipe(kwargs: dict, seed: int):
    """A ControlNet of this shape named as lllyasviel's and A1111's single files name it (control_model.*, F16): its
    config (with the parameter names), the diffusers -> file name map and the recipe."""
    torch.manual_seed(0)
    shape = ControlNetModel(**kwargs).eval()
    config = {**controlnet_config(shape), "_names": list(shape.state_dict())}
    names = lambda k: LDM_PREFIX + ldm_key(k, config)  # noqa: E731
    return config, names, recipe_of(shape, seed, "F16", names)


def from_single_file(data: bytes, file_name: str, config: dict) -> ControlNetModel:
    """diffusers' ControlNetModel.from_single_file on these bytes under this name, its config given (no Hub)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / file_name
        path.write_bytes(data)
        (Path(tmp) / "config").mkdir()
        (Path(tmp) / "config" / "config.json").write_text(json.dumps({k: v for k, v in config.items() if k != "_names"}))
        return ControlNetModel.from_single_file(str(path), config=str(Path(tmp) / "config"), local_files_only=True).eval()


def build_sd1(w: RefWriter) -> dict:
    config, names, recipe = single_file_recipe(SD1, SD1_SEED)
    data = to_bytes(recipe)
    values = tensors(recipe)
    read = load(data)
    if set(read) != set(values) or any(not torch.equal(read[k], v) for k, v in values.items()):
        raise AssertionError("safetensors reads the sd1 file differently from its recipe")
    layout = folder_layout(recipe, config, names)
    net = from_single_file(data, "control_sd1.safetensors", config)
    check_loaded(net, values, names)
    with tempfile.TemporaryDirectory() as tmp:
        write_folder(layout, Path(tmp))
        same = ControlNetModel.from_pretrained(tmp).eval()
    computed = residuals(net, SD1_SEED)
    for (about, want), (_, got) in zip(computed, residuals(same, SD1_SEED)):
        if not all(torch.equal(a, b) for a, b in zip(want, got)):
            raise AssertionError(f"case {about['name']}: from_pretrained on the folder and from_single_file on the file differ")
    refs = residual_refs(w, "sd1", computed)
    write_gzip_text(OUT / "sd1.recipe.json.gz", json.dumps(recipe, separators=(",", ":")))
    write_gzip_text(OUT / "sd1.diffusers.json.gz", json.dumps(layout, separators=(",", ":")))
    old = hashlib.sha256(data[0x100000:0x110000]).hexdigest()[:8]
    return {"name": "sd1", "layout": "control_model.", "bytes": len(data), "sha256": sha256(data), "a1111OldHash": old, "cases": refs}


def build_pth(w: RefWriter) -> dict:
    """lllyasviel's layout (control_v11p_sd15_canny.pth): torch.save of {control_model.*: tensor}, loaded by from_single_file."""
    config, names, recipe = single_file_recipe(PTH, PTH_SEED)
    values = tensors(recipe)
    buffer = io.BytesIO()
    torch.save({entry[0]: values[entry[0]] for entry in recipe["tensors"]}, buffer)
    data = buffer.getvalue()
    net = from_single_file(data, "control_v11p_tiny.pth", config)
    check_loaded(net, values, names)
    (OUT / "pth.pth.gz").write_bytes(gzip.compress(data, mtime=0))
    write_gzip_text(OUT / "pth.recipe.json.gz", json.dumps(recipe, separators=(",", ":")))
    old = hashlib.sha256(data[0x100000:0x110000]).hexdigest()[:8]
    return {"name": "pth", "layout": "control_model. (torch.save)", "bytes": len(data), "sha256": sha256(data), "a1111OldHash": old,
            # the odd-sized case alone: its references are 13 kB where the batch-2 one's are 48 kB
            "cases": residual_refs(w, "pth", residuals(net, PTH_SEED, [c for c in RESIDUAL_CASES if c[0] == "odd"]))}


def build_tiny(w: RefWriter) -> dict:
    config_source = json.loads((REPO / "test" / "fixtures" / "tiny-sd-control" / "controlnet" / "config.json").read_text())
    torch.manual_seed(0)
    shape = ControlNetModel.from_config(config_source).eval()
    config = {**controlnet_config(shape), "_names": list(shape.state_dict())}
    same = lambda k: k  # noqa: E731
    recipe = recipe_of(shape, TINY_SEED, "F32", same)
    layout = folder_layout(recipe, config, same)
    with tempfile.TemporaryDirectory() as tmp:
        write_folder(layout, Path(tmp))
        net = ControlNetModel.from_pretrained(tmp).eval()
    check_loaded(net, tensors(recipe), same)
    write_gzip_text(OUT / "tiny.diffusers.json.gz", json.dumps(layout, separators=(",", ":")))
    return {"name": "tiny", "layout": "diffusers", "cases": residual_refs(w, "tiny", residuals(net, TINY_SEED)), "pipeline": pipeline_refs(w, net)}


def pipeline_refs(w: RefWriter, net: ControlNetModel) -> list[dict]:
    base = models.build_txt2img_pipeline(TINY_SD / "tokenizer")
    unet = cn_fixture.build_unet()
    pipe = StableDiffusionControlNetPipeline(
        vae=base.vae, text_encoder=base.text_encoder, tokenizer=base.tokenizer, unet=unet, controlnet=net,
        scheduler=models.sd15_scheduler(), safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    images = {key: Image.open(PICTURES / f"control.{key}.png").convert("RGB") for key in cn_fixture.IMAGES}
    cases = [
        cn_fixture.ControlCase("file-euler-scale0.8", "EulerDiscreteScheduler", 5, 900, (cn_fixture.Unit("a", 0.8),), negative_prompt=cn_fixture.NEGATIVE),
        cn_fixture.ControlCase("file-ddim-guess", "DDIMScheduler", 6, 901, (cn_fixture.Unit("b", 1.0, 0.0, 0.8),), guess_mode=True, guidance_scale=5.0),
    ]
    records = []
    for case in cases:
        record = cn_fixture.run_case({"txt2img": pipe}, pipe.scheduler.config, case, images, {}, w)
        records.append({**record, "model": "tiny-sd-control + controlnet-files/tiny"})
    return records


def sd1x2_controlnet() -> tuple[ControlNetModel, dict]:
    """The sd1x2 ControlNet (the sd1 shape with a 2x control embedding) loaded from its diffusers folder, and that folder's layout."""
    torch.manual_seed(0)
    shape = ControlNetModel(**{**SD1, "conditioning_embedding_out_channels": (8, 16)}).eval()
    config = {**controlnet_config(shape), "_names": list(shape.state_dict())}
    same = lambda k: k  # noqa: E731
    recipe = recipe_of(shape, SD1X2_SEED, "F32", same)
    layout = folder_layout(recipe, config, same)
    with tempfile.TemporaryDirectory() as tmp:
        write_folder(layout, Path(tmp))
        net = ControlNetModel.from_pretrained(tmp).eval()
    check_loaded(net, tensors(recipe), same)
    return net, layout


def build_sd1_checkpoint(w: RefWriter) -> dict:
    """An sd1-shaped ControlNet with a 2x control embedding (the sd1 checkpoint's VAE is 2x) as a diffusers folder, and
    StableDiffusionControlNetPipeline on the graph fixtures' sd1 checkpoint: its UNet by UNet2DConditionModel.from_single_file,
    its text encoder and VAE through diffusers' single-file converters (tools/make_graph_fixtures.py load_modules)."""
    net, layout = sd1x2_controlnet()
    ckpt_recipe = json.loads(gzip.decompress((GRAPHS / "sd1.recipe.json.gz").read_bytes()))
    checkpoint = tensors(ckpt_recipe)
    modules = graph_fx.load_modules(SD1_SPEC, checkpoint)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "sd1.safetensors").write_bytes(to_bytes(ckpt_recipe))
        (Path(tmp) / "unet").mkdir()
        (Path(tmp) / "unet" / "config.json").write_text(json.dumps(dict(modules["unet"].config), default=list))
        unet = UNet2DConditionModel.from_single_file(str(Path(tmp) / "sd1.safetensors"), config=str(Path(tmp) / "unet"), local_files_only=True).eval()
    for k, v in modules["unet"].state_dict().items():
        if not torch.equal(unet.state_dict()[k], v):
            raise AssertionError(f"from_single_file and diffusers' converter load {k} differently")
    write_gzip_text(OUT / "sd1x2.diffusers.json.gz", json.dumps(layout, separators=(",", ":")))
    scheduler = EulerDiscreteScheduler.from_config(models.SD15_SCHEDULER_CONFIG)
    pipe = StableDiffusionControlNetPipeline(
        vae=modules["vae"], text_encoder=modules["text_encoder"], tokenizer=CLIPTokenizer.from_pretrained(str(TINY_SD / "tokenizer")),
        unet=unet, controlnet=net, scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    images = {key: Image.open(PICTURES / f"control.{key}.png").convert("RGB") for key in cn_fixture.IMAGES}
    cases = [
        cn_fixture.ControlCase("checkpoint-euler-scale0.9", "EulerDiscreteScheduler", 4, 910, (cn_fixture.Unit("a", 0.9),), negative_prompt=cn_fixture.NEGATIVE),
        cn_fixture.ControlCase("checkpoint-ddim-start0.25", "DDIMScheduler", 4, 911, (cn_fixture.Unit("b", 1.2, 0.25, 1.0),)),
    ]
    records = [{**cn_fixture.run_case({"txt2img": pipe}, scheduler.config, case, images, {}, w), "model": "graphs/sd1 checkpoint + controlnet-files/sd1x2"}
               for case in cases]
    return {"name": "sd1x2", "layout": "diffusers", "cases": [], "pipeline": records}, net


def inpaint_pipeline(net: ControlNetModel) -> tuple[StableDiffusionControlNetInpaintPipeline, dict, bytes]:
    """StableDiffusionControlNetInpaintPipeline on the sd1-inpaint checkpoint (written from its recipe, loaded through
    diffusers' single-file converters) with `net`; the recipe and the checkpoint's bytes."""
    layout, integers = ldm_layout(INPAINT_SPEC)
    recipe = recipe_for(INPAINT_SPEC.seed, layout, INPAINT_SPEC.dtype, integers)
    data = to_bytes(recipe)
    modules = graph_fx.load_modules(INPAINT_SPEC, graph_fx.check_file(data, recipe))
    scheduler = EulerDiscreteScheduler.from_config(models.SD15_SCHEDULER_CONFIG)
    pipe = StableDiffusionControlNetInpaintPipeline(
        vae=modules["vae"], text_encoder=modules["text_encoder"], tokenizer=CLIPTokenizer.from_pretrained(str(TINY_SD / "tokenizer")),
        unet=modules["unet"], controlnet=net, scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe, recipe, data


def build_inpaint_checkpoint(w: RefWriter, net: ControlNetModel) -> dict:
    """StableDiffusionControlNetInpaintPipeline with a 9-channel UNet: the sd1x2 ControlNet (which reads the 4 latent
    channels, as diffusers passes it the latents before the mask and masked-image latents are concatenated) on a 9-channel
    checkpoint of the sd1 spec's shape, written from a recipe and loaded through diffusers' single-file converters."""
    pipe, recipe, data = inpaint_pipeline(net)
    write_gzip_text(OUT / "sd1-inpaint.recipe.json.gz", json.dumps(recipe, separators=(",", ":")))
    scheduler = pipe.scheduler
    images = {key: Image.open(PICTURES / f"control.{key}.png").convert("RGB") for key in cn_fixture.IMAGES}
    # test/fixtures/pipeline's inputs, named by their path there (the test reads them from that folder)
    init = {(32, 32): ("../pipeline/input.init-image.32x32.png", Image.open(INPAINT_INPUTS / "input.init-image.32x32.png").convert("RGB"))}
    masks = {(32, 32): ("../pipeline/input.mask.32x32.png", Image.open(INPAINT_INPUTS / "input.mask.32x32.png").convert("L"))}
    cases = [
        cn_fixture.ControlCase("inpaint-ddim-s1.0", "DDIMScheduler", 6, 920, (cn_fixture.Unit("a", 0.9),), strength=1.0),
        cn_fixture.ControlCase("inpaint-euler-s0.7-start0.2", "EulerDiscreteScheduler", 6, 921, (cn_fixture.Unit("b", 1.1, 0.2, 1.0),),
                               strength=0.7, negative_prompt=cn_fixture.NEGATIVE),
        cn_fixture.ControlCase("inpaint-dpmpp-2m-guess-end0.8", "DPMSolverMultistepScheduler", 6, 922, (cn_fixture.Unit("a", 1.0, 0.0, 0.8),),
                               strength=1.0, guidance_scale=5.0, guess_mode=True),
    ]
    records = [{**cn_fixture.run_case({"img2img": pipe}, scheduler.config, case, images, init, w, masks), "model": "controlnet-files/sd1-inpaint checkpoint + sd1x2"}
               for case in cases]
    return {"name": "sd1-inpaint", "layout": "checkpoint", "bytes": len(data), "sha256": sha256(data), "cases": [], "pipeline": records}


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    writer = RefWriter(OUT)
    sd1x2, sd1x2_net = build_sd1_checkpoint(writer)
    entries = [build_sd1(writer), build_tiny(writer), sd1x2, build_inpaint_checkpoint(writer, sd1x2_net), build_pth(writer)]
    writer.manifest("cases.json", {
        "generator": "tools/make_controlnet_file_fixture.py",
        "conventions": {
            "recipes": "tools/synthetic_checkpoint.py; *.diffusers.json.gz: {files, configs} of a diffusers ControlNet folder",
            "inputs": "draw(seed, 100) sample, draw(seed, 101) context, (draw(seed, 102) + 1) / 2 control image: values(seed, index) in [-1, 1)",
            "residuals": "down_block_res_samples then mid_block_res_sample, times conditioning_scale; float32 .bin",
            "pipeline": "as test/fixtures/controlnet-pipeline/cases.json; control pictures are that folder's",
        },
        "models": entries,
    })
    size = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {OUT} ({size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
