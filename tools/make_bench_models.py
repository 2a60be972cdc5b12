"""Full-size Stable Diffusion 1.5 and LCM with random weights, for the speed benchmark (bench/run.ts).

Speed depends on the architecture, not on the weight values, so the real SD 1.5 configs (written out below,
no Hub download) are instantiated with fixed-seed random weights and saved as:

  <cache>/sd15/torch/   diffusers pipeline folder (safetensors) — diffusers' PyTorch pipeline, and
                        stable-diffusion.cpp, which reads this layout directly (`-m <folder>`)
  <cache>/sd15/onnx/    optimum's diffusers ONNX layout (fp32, UNet weights as external data)
  <cache>/sd15/sd15.safetensors
                        the same weights as one original-layout checkpoint (tools/sd15_single_file.py), as
                        stable-diffusion.cpp, A1111 and ComfyUI load them
  <cache>/lcm/torch/    LCM-Dreamshaper-v7's architecture: SD 1.5's parts with a UNet that takes the guidance
                        embedding (`time_cond_proj_dim` 256) and an LCMScheduler
  <cache>/lcm/onnx/     its optimum export (the text encoder and VAE weights equal sd15's)
  <cache>/sdxl/torch/   SDXL base's architecture as a diffusers folder (fp16, 6.9 GB; tools/sdxl_bench_models.py)
  <cache>/sdxl/sdxl.safetensors
                        the same weights as one SGM-layout checkpoint (fp16, tools/sdxl_single_file.py), as
                        stable-diffusion.cpp loads them
  <cache>/controlnet/   an SD 1.5 ControlNet as a diffusers folder (config.json + diffusion_pytorch_model.safetensors,
                        1.4 GB): lllyasviel's v1.1 architecture (`ControlNetModel.from_unet` of sd15's UNet, the
                        16/32/96/256 conditioning embedding, 768-wide text), zero convolutions given random weights;
                        diffuse converts it as `--control model=<folder>` does (bench row 'diffuse controlnet')

<cache> is $DIFFUSE_BENCH_CACHE or ~/.cache/diffuse-bench (outside the repo): sd15 takes 8.0 GB (torch and ONNX
layouts, 4.0 GB each), the single file 4.0 GB, lcm about 8 GB, controlnet 1.4 GB; 21 GB in all, plus diffuse's optimised and edited graphs
(up to ~22 GB once every row has run: bench/README.md).
Run: /opt/diffuse-venv/bin/python tools/make_bench_models.py [--only sd15,single-file,lcm,controlnet,sdxl,sdxl-single-file]
(steps whose outputs exist are skipped; sd15 (sdxl) is built first when a part made from it is wanted)
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    LatentConsistencyModelPipeline,
    LCMScheduler,
    PNDMScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixtures_models import SD15_SCHEDULER_CONFIG  # noqa: E402
from fixtures_onnx import _float_timestep_unet_config  # noqa: E402
from sd15_single_file import write_single_file  # noqa: E402
from sdxl_bench_models import build_sdxl  # noqa: E402
from sdxl_single_file import write_single_file as write_sdxl_single_file  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TOKENIZER_DIR = REPO / "test" / "fixtures" / "tiny-sd" / "tokenizer"
SEED = 0
LCM_UNET_SEED = 1
CONTROLNET_SEED = 2
# lllyasviel/control_v11p_sd15_* config.json: the control image's embedding before the UNet's first block.
CONTROLNET_CONDITIONING_CHANNELS = (16, 32, 96, 256)
# SimianLuo/LCM_Dreamshaper_v7 unet/config.json: SD 1.5's UNet plus the guidance-scale embedding projection.
LCM_TIME_COND_PROJ_DIM = 256
DONE_MARKER = ".complete"

# stable-diffusion-v1-5/stable-diffusion-v1-5 unet/config.json (architecture fields).
SD15_UNET_CONFIG: dict[str, object] = {
    "act_fn": "silu",
    "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}

# stable-diffusion-v1-5 vae/config.json.
SD15_VAE_CONFIG: dict[str, object] = {
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 512,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}

# openai/clip-vit-large-patch14's text tower, as in stable-diffusion-v1-5 text_encoder/config.json.
SD15_TEXT_ENCODER_CONFIG: dict[str, object] = {
    "attention_dropout": 0.0,
    "bos_token_id": 0,
    "dropout": 0.0,
    "eos_token_id": 2,
    "hidden_act": "quick_gelu",
    "hidden_size": 768,
    "initializer_factor": 1.0,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77,
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "pad_token_id": 1,
    "projection_dim": 768,
    "vocab_size": 49408,
}


def cache_dir() -> Path:
    return Path(os.environ.get("DIFFUSE_BENCH_CACHE", Path.home() / ".cache" / "diffuse-bench"))


def is_complete(folder: Path) -> bool:
    return (folder / DONE_MARKER).exists()


def mark_complete(folder: Path) -> None:
    (folder / DONE_MARKER).write_text("ok\n")


def build_sd15_pipeline() -> StableDiffusionPipeline:
    # One seed for the whole build: the weights are reproducible, and nothing depends on their values.
    torch.manual_seed(SEED)
    text_encoder = CLIPTextModel(CLIPTextConfig(**SD15_TEXT_ENCODER_CONFIG)).eval()
    unet = UNet2DConditionModel(**SD15_UNET_CONFIG).eval()
    vae = AutoencoderKL(**SD15_VAE_CONFIG).eval()
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=CLIPTokenizer.from_pretrained(str(TOKENIZER_DIR)),
        unet=unet,
        scheduler=PNDMScheduler.from_config(SD15_SCHEDULER_CONFIG),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def build_lcm_pipeline(sd15_torch_dir: Path) -> LatentConsistencyModelPipeline:
    sd15 = StableDiffusionPipeline.from_pretrained(str(sd15_torch_dir), safety_checker=None, local_files_only=True)
    torch.manual_seed(LCM_UNET_SEED)
    unet = UNet2DConditionModel(**SD15_UNET_CONFIG, time_cond_proj_dim=LCM_TIME_COND_PROJ_DIM).eval()
    return LatentConsistencyModelPipeline(
        vae=sd15.vae,
        text_encoder=sd15.text_encoder,
        tokenizer=sd15.tokenizer,
        unet=unet,
        scheduler=LCMScheduler.from_config(SD15_SCHEDULER_CONFIG, set_alpha_to_one=True),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def build_controlnet(sd15_torch_dir: Path, dest: Path) -> None:
    from make_controlnet_fixture import build_controlnet as random_controlnet

    unet = UNet2DConditionModel.from_pretrained(str(sd15_torch_dir / "unet"))
    net = random_controlnet(unet, CONTROLNET_CONDITIONING_CHANNELS, CONTROLNET_SEED)
    del unet
    save_torch(net, dest)


def save_torch(pipe, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    pipe.save_pretrained(str(dest), safe_serialization=True)
    mark_complete(dest)


def export_onnx(torch_dir: Path, dest: Path) -> None:
    from optimum.exporters.onnx import main_export

    if dest.exists():
        shutil.rmtree(dest)
    unet = UNet2DConditionModel.from_pretrained(str(torch_dir / "unet"))
    # No validation pass: at full size it would double the export's time and memory, and the tiny fixture
    # export (tools/fixtures_onnx.py, same exporter and UNet config) is already checked against torch.
    main_export(
        str(torch_dir),
        output=str(dest),
        task="text-to-image",
        dtype="fp32",
        device="cpu",
        library_name="diffusers",
        do_validation=False,
        local_files_only=True,
        custom_onnx_configs={
            "unet": _float_timestep_unet_config(unet.config, int(SD15_TEXT_ENCODER_CONFIG["projection_dim"]))
        },
    )
    del unet
    mark_complete(dest)


def build_model(root: Path, make_pipeline) -> None:
    torch_dir, onnx_dir = root / "torch", root / "onnx"
    started = time.time()
    if is_complete(torch_dir):
        print(f"skip: {torch_dir} exists")
    else:
        save_torch(make_pipeline(), torch_dir)
        print(f"saved {torch_dir} ({time.time() - started:.0f} s)")
    if is_complete(onnx_dir):
        print(f"skip: {onnx_dir} exists")
    else:
        export_onnx(torch_dir, onnx_dir)
        print(f"exported {onnx_dir} ({time.time() - started:.0f} s)")


# What each part is for and what it costs (measured on the 2-core AMD EPYC of bench/results): sd15 is every fp32 row's
# model (torch 4.0 GB + ONNX 4.0 GB), single-file only stable-diffusion.cpp's (4.0 GB), lcm the LCM rows' (needs sd15),
# controlnet the ControlNet rows' (1.4 GB, needs sd15), sdxl the SDXL rows' (6.9 GB fp16), sdxl-single-file
# stable-diffusion.cpp's SDXL row's (6.9 GB, needs sdxl).
PARTS = ("sd15", "single-file", "lcm", "controlnet", "sdxl", "sdxl-single-file")
SD15_PARTS = ("sd15", "single-file", "lcm", "controlnet")


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Build the benchmark's full-size random-weight models.")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts to build: {', '.join(PARTS)}")
    wanted = parser.parse_args().only.split(",")
    unknown = [p for p in wanted if p not in PARTS]
    if unknown:
        parser.error(f"unknown part {', '.join(unknown)} (parts: {', '.join(PARTS)})")
    sd15 = cache_dir() / "sd15"
    # The single file, LCM and the ControlNet are made from sd15's torch folder.
    if any(p in SD15_PARTS for p in wanted):
        build_model(sd15, build_sd15_pipeline)
    single = sd15 / "sd15.safetensors"
    if "single-file" in wanted and single.exists():
        print(f"skip: {single} exists")
    elif "single-file" in wanted:
        print(f"wrote {single}: {write_single_file(sd15 / 'torch', single)} tensors, checked by a round trip")
    if "lcm" in wanted:
        build_model(cache_dir() / "lcm", lambda: build_lcm_pipeline(sd15 / "torch"))
    controlnet = cache_dir() / "controlnet"
    if "controlnet" in wanted and is_complete(controlnet):
        print(f"skip: {controlnet} exists")
    elif "controlnet" in wanted:
        started = time.time()
        build_controlnet(sd15 / "torch", controlnet)
        print(f"saved {controlnet} ({time.time() - started:.0f} s)")
    sdxl = cache_dir() / "sdxl" / "torch"
    sdxl_wanted = "sdxl" in wanted or "sdxl-single-file" in wanted
    if sdxl_wanted and is_complete(sdxl):
        print(f"skip: {sdxl} exists")
    elif sdxl_wanted:
        started = time.time()
        build_sdxl(TOKENIZER_DIR, sdxl)
        mark_complete(sdxl)
        print(f"saved {sdxl} ({time.time() - started:.0f} s)")
    sdxl_single = sdxl.parent / "sdxl.safetensors"
    if "sdxl-single-file" in wanted and sdxl_single.exists():
        print(f"skip: {sdxl_single} exists")
    elif "sdxl-single-file" in wanted:
        started = time.time()
        checked = write_sdxl_single_file(sdxl, sdxl_single)
        print(f"wrote {sdxl_single}: {checked} tensors, checked by a round trip ({time.time() - started:.0f} s)")

if __name__ == "__main__":
    main()
