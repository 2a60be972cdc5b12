"""An SDXL ControlNet for the ControlNet graph builder and pipeline: test/fixtures/sdxl-controlnet/.

The ControlNet has the shape diffusers' `ControlNetModel.from_unet` gives tiny-sdxl's UNet (tools/sdxl_fixture_models.py:
addition_embed_type "text_time" over the pooled text and six time ids, transformer depths (1, 2) per level, linear
projections, norm groups 4) with a one-stage control embedding (tiny-sdxl's VAE is 2x). Its weights are a synthetic
recipe (tools/synthetic_checkpoint.py; the test writes the diffusers folder, config.json + diffusion_pytorch_model.safetensors,
from the recipe), loaded back with `ControlNetModel.from_pretrained` (every parameter checked against the recipe).

References: diffusers' `StableDiffusionXLControlNetPipeline` on tiny-sdxl's torch components (rebuilt from their seeds;
the fixture's ONNX graphs are their exports) and that ControlNet, on test/fixtures/controlnet-pipeline's control pictures:
final latents per case (schedulers, CFG with a negative prompt or the zeroed empty one, conditioning scales, guidance
start/end, guess mode, two units), and `StableDiffusionXLControlNetImg2ImgPipeline` on tools/fixtures_refs_img2img's
init picture (strength 0.7 and 0.8).

`inpaint`: `StableDiffusionXLControlNetInpaintPipeline` on tiny-sdxl-inpaint's 9-channel UNet (its time ids are the six
sizes: requires_aesthetics_score is False there) with the same ControlNet, which reads the 4 latent channels (diffusers hands
it the latents before the mask and masked-picture latents are joined), on tools/make_sdxl_fixture.py's init picture and mask:
Euler, DDIM, DPM++ 2M, two units, strength 0.7-1.0, guess mode, start/end.

`refiner`: ControlNet with the refiner as A1111 + sd-webui-controlnet run it (the extension hooks the base model's UNet, and
A1111's refiner switch loads another model, which no unit reaches): StableDiffusionXLControlNetPipeline to denoising_end,
then tiny-sdxl-refiner's StableDiffusionXLImg2ImgPipeline from denoising_start, one generator.

`checkpoint`: a second ControlNet of the shape from_unet gives test/fixtures/sdxl-checkpoint's single-file SDXL UNet
(widths 32/64, two resnets per level, norm groups 32, one head per level) with StableDiffusionXLControlNetPipeline on
that checkpoint's modules as diffusers' single-file converters load them (tools/make_sdxl_checkpoint_fixture.py
load_modules): a ControlNet with an SDXL UNet diffuse builds from a single file, which takes residual inputs only when
ControlNets load (src/onnx/control-residuals.ts).

Usage: /opt/diffuse-venv/bin/python tools/make_sdxl_controlnet_fixture.py   (deterministic; a rerun writes the same bytes)
"""
from __future__ import annotations

import gzip
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from diffusers import (ControlNetModel, StableDiffusionXLControlNetImg2ImgPipeline, StableDiffusionXLControlNetInpaintPipeline,
                       StableDiffusionXLControlNetPipeline)
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_controlnet_fixture as cn_fixture  # noqa: E402
import make_sdxl_checkpoint_fixture as ckpt_fixture  # noqa: E402
import sdxl_fixture_models as models  # noqa: E402
from fixtures_io import RefWriter  # noqa: E402
from fixtures_refs_img2img import init_image  # noqa: E402
from gzip_json import write_gzip_text  # noqa: E402
from make_controlnet_file_fixture import check_loaded, controlnet_config, folder_layout, recipe_of, write_folder  # noqa: E402
from synthetic_checkpoint import tensors  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "test" / "fixtures" / "sdxl-controlnet"
TINY_SDXL = REPO / "test" / "fixtures" / "tiny-sdxl"
PICTURES = REPO / "test" / "fixtures" / "controlnet-pipeline"
SEED, CHECKPOINT_SEED = 31, 32
CHECKPOINT_DIR = REPO / "test" / "fixtures" / "sdxl-checkpoint"
# tools/make_sdxl_fixture.py's inpaint picture and mask, named by their path from OUT (the test reads them there)
INPAINT_INPUTS = {"init": "../sdxl-pipeline/init.png", "mask": "../sdxl-pipeline/mask.png"}
MAX_MB = 0.12

Unit, Case = cn_fixture.Unit, cn_fixture.ControlCase
CASES = [
    Case("euler-cfg5-scale0.8", "EulerDiscreteScheduler", 5, 930, (Unit("a", 0.8),), guidance_scale=5.0, negative_prompt=cn_fixture.NEGATIVE),
    Case("dpmpp-2m-start0.2-end0.8", "DPMSolverMultistepScheduler", 6, 931, (Unit("b", 1.3, 0.2, 0.8),)),
    Case("ddim-guess", "DDIMScheduler", 5, 932, (Unit("a", 0.9),), guidance_scale=5.0, guess_mode=True),
    Case("euler-multi", "EulerDiscreteScheduler", 5, 933, (Unit("a", 0.7, 0.0, 0.6), Unit("b", 0.5, 0.2, 1.0)), negative_prompt=cn_fixture.NEGATIVE),
    Case("img2img-euler-s0.7", "EulerDiscreteScheduler", 6, 934, (Unit("b", 0.8),), strength=0.7, negative_prompt=cn_fixture.NEGATIVE),
    Case("img2img-ddim-s0.8-guess", "DDIMScheduler", 6, 935, (Unit("a", 1.1),), strength=0.8, guidance_scale=5.0, guess_mode=True),
]

# StableDiffusionXLControlNetInpaintPipeline on tiny-sdxl-inpaint's 9-channel UNet (requires_aesthetics_score False, as
# its model_index.json: six size time ids), the ControlNet reading the 4 latent channels
INPAINT_CASES = [
    Case("inpaint-euler-s1.0-cfg5", "EulerDiscreteScheduler", 6, 950, (Unit("a", 0.9),), strength=1.0, guidance_scale=5.0, negative_prompt=cn_fixture.NEGATIVE),
    Case("inpaint-ddim-s0.75-start0.2", "DDIMScheduler", 8, 951, (Unit("b", 1.1, 0.2, 1.0),), strength=0.75),
    Case("inpaint-dpmpp-2m-s0.8-guess-end0.8", "DPMSolverMultistepScheduler", 8, 952, (Unit("a", 1.0, 0.0, 0.8),), strength=0.8, guidance_scale=5.0, guess_mode=True),
    Case("inpaint-euler-multi-s0.7", "EulerDiscreteScheduler", 6, 953, (Unit("a", 0.7, 0.0, 0.6), Unit("b", 0.5, 0.2, 1.0)), strength=0.7, negative_prompt=cn_fixture.NEGATIVE),
]

# StableDiffusionXLControlNetPipeline to denoising_end, then tiny-sdxl-refiner's StableDiffusionXLImg2ImgPipeline from
# denoising_start (single-step samplers: the two pipelines are then one loop with the model swapped). Start/end are fractions
# of every step, the refiner's too; end 0.5 at a switch of 0.8 shows it.
REFINER_CASES = [
    Case("refiner-euler-0.8", "EulerDiscreteScheduler", 10, 960, (Unit("a", 0.9),), guidance_scale=5.0, negative_prompt=cn_fixture.NEGATIVE, refiner_switch=0.8),
    Case("refiner-ddim-0.7-guess-start0.2", "DDIMScheduler", 10, 961, (Unit("b", 1.1, 0.2, 1.0),), guidance_scale=5.0, guess_mode=True,
         negative_prompt=cn_fixture.NEGATIVE, refiner_switch=0.7),
    Case("refiner-euler-0.8-end0.5", "EulerDiscreteScheduler", 10, 962, (Unit("a", 1.0, 0.0, 0.5),), guidance_scale=5.0, negative_prompt=cn_fixture.NEGATIVE,
         refiner_switch=0.8),
]


def build_controlnet(unet, seed: int) -> tuple[ControlNetModel, dict]:
    """from_unet's shape (its copied weights are replaced by the recipe's), and the recipe's diffusers folder layout."""
    shape = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=cn_fixture.CONDITIONING_CHANNELS).eval()
    config = {**controlnet_config(shape), "_names": list(shape.state_dict())}
    same = lambda k: k  # noqa: E731
    recipe = recipe_of(shape, seed, "F32", same)
    layout = folder_layout(recipe, config, same)
    with tempfile.TemporaryDirectory() as tmp:
        write_folder(layout, Path(tmp))
        net = ControlNetModel.from_pretrained(tmp).eval()
    check_loaded(net, tensors(recipe), same)
    return net, layout


def checkpoint_cases(images: dict, writer: RefWriter) -> tuple[list[dict], dict]:
    recipe = json.loads(gzip.decompress((CHECKPOINT_DIR / f"{ckpt_fixture.NAME}.recipe.json.gz").read_bytes()))
    modules = ckpt_fixture.load_modules(tensors(recipe))
    net, layout = build_controlnet(modules["unet"], CHECKPOINT_SEED)
    tok1, tok2 = ckpt_fixture.tokenizers()
    pipe = StableDiffusionXLControlNetPipeline(vae=modules["vae"], text_encoder=modules["text_encoder"], text_encoder_2=modules["text_encoder_2"],
                                               tokenizer=tok1, tokenizer_2=tok2, unet=modules["unet"], controlnet=net, scheduler=models.scheduler(),
                                               force_zeros_for_empty_prompt=True, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    cases = [
        Case("checkpoint-euler-scale0.9", "EulerDiscreteScheduler", 4, 940, (Unit("a", 0.9),), guidance_scale=5.0, negative_prompt=cn_fixture.NEGATIVE),
        Case("checkpoint-ddim-start0.25", "DDIMScheduler", 4, 941, (Unit("b", 1.2, 0.25, 1.0),)),
    ]
    records = [{**cn_fixture.run_case({"txt2img": pipe}, models.SDXL_SCHEDULER_CONFIG, case, images, {}, writer), "model": "sdxl-checkpoint + checkpoint ControlNet"}
               for case in cases]
    return records, layout


# the command line's case (test/sdxl-cli.test.ts): the refiner's VAE decodes, as after A1111's switch
REFINER_PNG = "refiner-euler-0.8-end0.5"


def refiner_png(refiner, record: dict, writer: RefWriter) -> str:
    """diffusers' own PNG of a case's final latents (round(image * 255) of the refiner pipeline's postprocess)."""
    latents = torch.from_numpy(np.fromfile(OUT / record["final_latents"]["file"], dtype="<f4").reshape(record["final_latents"]["shape"]))
    with torch.no_grad():
        decoded = refiner.vae.decode(latents / refiner.vae.config.scaling_factor, return_dict=False)[0]
    return writer.png(f"{record['name']}.0", refiner.image_processor.postprocess(decoded, output_type="pil")[0])


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    base = models.build_base(TINY_SDXL)
    net, layout = build_controlnet(base.unet, SEED)
    if net.config.addition_embed_type != "text_time" or list(net.config.transformer_layers_per_block) != [1, 2]:
        raise AssertionError("the ControlNet is not of SDXL's shape")
    parts = dict(vae=base.vae, text_encoder=base.text_encoder, text_encoder_2=base.text_encoder_2, tokenizer=base.tokenizer,
                 tokenizer_2=base.tokenizer_2, unet=base.unet, scheduler=base.scheduler, force_zeros_for_empty_prompt=True,
                 add_watermarker=False)
    pipes = {1: StableDiffusionXLControlNetPipeline(**parts, controlnet=net), 2: StableDiffusionXLControlNetPipeline(**parts, controlnet=[net, net])}
    img2img = StableDiffusionXLControlNetImg2ImgPipeline(**parts, controlnet=net)
    for pipe in [*pipes.values(), img2img]:
        pipe.set_progress_bar_config(disable=True)
    images = {key: Image.open(PICTURES / f"control.{key}.png").convert("RGB") for key in cn_fixture.IMAGES}
    OUT.mkdir(parents=True, exist_ok=True)
    writer = RefWriter(OUT)
    size = (models.NATIVE_SIZE, models.NATIVE_SIZE)
    init_file = writer.png(f"init.{size[0]}x{size[1]}", init_image(*size))
    init = {size: (init_file, Image.open(OUT / init_file).copy())}
    records = []
    for case in CASES:
        record = cn_fixture.run_case({"txt2img": pipes[len(case.units)], "img2img": img2img}, models.SDXL_SCHEDULER_CONFIG, case, images, init, writer)
        records.append({**record, "model": "tiny-sdxl + sdxl-controlnet/controlnet"})
        print(f"{case.name}: {len(record['unet_timesteps'])} UNet calls")
    inpaint_parts = {**parts, "unet": models.build_inpaint(base).unet, "requires_aesthetics_score": False}
    inpaint_pipes = {1: StableDiffusionXLControlNetInpaintPipeline(**inpaint_parts, controlnet=net),
                     2: StableDiffusionXLControlNetInpaintPipeline(**inpaint_parts, controlnet=[net, net])}
    refiner = models.build_refiner(base)
    for pipe in [*inpaint_pipes.values(), refiner]:
        pipe.set_progress_bar_config(disable=True)
    pictures = {key: (path, Image.open(OUT / path)) for key, path in INPAINT_INPUTS.items()}
    inpaint_init = {size: (pictures["init"][0], pictures["init"][1].convert("RGB"))}
    masks = {size: (pictures["mask"][0], pictures["mask"][1].convert("L"))}
    inpaint_records = []
    for case in INPAINT_CASES:
        record = cn_fixture.run_case({"img2img": inpaint_pipes[len(case.units)]}, models.SDXL_SCHEDULER_CONFIG, case, images, inpaint_init, writer, masks)
        inpaint_records.append({**record, "model": "tiny-sdxl-inpaint + sdxl-controlnet/controlnet"})
        print(f"{case.name}: {len(record['unet_timesteps'])} UNet calls")
    refiner_records = []
    for case in REFINER_CASES:
        record = cn_fixture.run_case({"txt2img": pipes[len(case.units)], "refiner": refiner}, models.SDXL_SCHEDULER_CONFIG, case, images, {}, writer)
        refiner_records.append({**record, "model": "tiny-sdxl + sdxl-controlnet/controlnet, refiner tiny-sdxl-refiner",
                                **({"png": [refiner_png(refiner, record, writer)]} if case.name == REFINER_PNG else {})})
        print(f"{case.name}: {len(record['unet_timesteps'])} base + {len(record['refiner_unet_timesteps'])} refiner UNet calls")
    checkpoint_records, checkpoint_layout = checkpoint_cases(images, writer)
    write_gzip_text(OUT / "controlnet.diffusers.json.gz", json.dumps(layout, separators=(",", ":")))
    write_gzip_text(OUT / "checkpoint.diffusers.json.gz", json.dumps(checkpoint_layout, separators=(",", ":")))
    writer.manifest("cases.json", {
        "generator": "tools/make_sdxl_controlnet_fixture.py",
        "conventions": {
            "recipe": "controlnet.diffusers.json.gz: {files, configs} of a diffusers ControlNet folder (tools/synthetic_checkpoint.py)",
            "pipeline": "StableDiffusionXLControlNetPipeline, force_zeros_for_empty_prompt; control pictures are controlnet-pipeline's",
        },
        "seed": SEED,
        "cases": records,
        "inpaint": inpaint_records,
        "refiner": refiner_records,
        "checkpoint": {"seed": CHECKPOINT_SEED, "model": "sdxl-checkpoint/sdxl-tiny + sdxl-controlnet/checkpoint", "cases": checkpoint_records},
    })
    writer.finish(MAX_MB)


if __name__ == "__main__":
    main()
