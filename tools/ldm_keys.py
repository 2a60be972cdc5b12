"""diffusers/transformers parameter names -> original (CompVis LDM) single-file checkpoint keys.

The layout A1111, ComfyUI and Civitai files use: model.diffusion_model.* (UNet), first_stage_model.* (VAE),
cond_stage_model.transformer.* (SD 1.x's CLIP text model) or cond_stage_model.model.* (SD 2.x's OpenCLIP, with
q/k/v packed into one in_proj). For any UNet/VAE config of the SD 1.x/2.x family, not only SD 1.5's; SDXL (SGM) adds
label_emb to the UNet and keeps its text encoders under conditioner.embedders.N.
`check_round_trip` runs diffusers' own converters (ldm -> diffusers) on a converted checkpoint and requires
every tensor back under its diffusers name with identical values; src/graphs/ldm-keys.ts maps the same way.
"""
from __future__ import annotations

import torch

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer."
OPEN_CLIP_PREFIX = "cond_stage_model.model."

UNET_RESNET_PARTS = {"norm1.": "in_layers.0.", "conv1.": "in_layers.2.", "norm2.": "out_layers.0.", "conv2.": "out_layers.3.",
                     "time_emb_proj.": "emb_layers.1.", "conv_shortcut.": "skip_connection."}
VAE_RESNET_PARTS = {"conv_shortcut.": "nin_shortcut."}
VAE_ATTENTION_PARTS = {"group_norm.": "norm.", "to_q.": "q.", "to_k.": "k.", "to_v.": "v.", "to_out.0.": "proj_out."}


def _rename(rest: str, parts: dict[str, str]) -> str:
    for hf, ldm in parts.items():
        if rest.startswith(hf):
            return ldm + rest[len(hf):]
    return rest


def _unet_prefixes(config: dict) -> list[tuple[str, str]]:
    """(diffusers prefix, ldm prefix): each level has layers_per_block resnets (+ attention) and a downsampler
    going down, layers_per_block + 1 resnets (+ attention) and an upsampler after the last going up."""
    per = config["layers_per_block"] + 1
    pairs: list[tuple[str, str]] = []
    for level in range(len(config["block_out_channels"])):
        for j in range(per - 1):
            block = level * per + j + 1
            pairs.append((f"down_blocks.{level}.resnets.{j}.", f"input_blocks.{block}.0."))
            pairs.append((f"down_blocks.{level}.attentions.{j}.", f"input_blocks.{block}.1."))
        pairs.append((f"down_blocks.{level}.downsamplers.0.conv.", f"input_blocks.{(level + 1) * per}.0.op."))
        for j in range(per):
            block = level * per + j
            pairs.append((f"up_blocks.{level}.resnets.{j}.", f"output_blocks.{block}.0."))
            pairs.append((f"up_blocks.{level}.attentions.{j}.", f"output_blocks.{block}.1."))
        attention = config["up_block_types"][level] == "CrossAttnUpBlock2D"
        pairs.append((f"up_blocks.{level}.upsamplers.0.", f"output_blocks.{level * per + per - 1}.{2 if attention else 1}."))
    pairs += [
        ("mid_block.resnets.0.", "middle_block.0."),
        ("mid_block.attentions.0.", "middle_block.1."),
        ("mid_block.resnets.1.", "middle_block.2."),
        ("time_embedding.linear_1.", "time_embed.0."),
        ("time_embedding.linear_2.", "time_embed.2."),
        ("conv_in.", "input_blocks.0.0."),
        ("conv_norm_out.", "out.0."),
        ("conv_out.", "out.2."),
    ]
    return pairs


def unet_key(name: str, config: dict) -> str:
    for hf, ldm in _unet_prefixes(config):
        if name.startswith(hf):
            rest = name[len(hf):]
            if ".resnets." in hf:
                rest = _rename(rest, UNET_RESNET_PARTS)
            return ldm + rest
    raise KeyError(f"no ldm name for UNet tensor {name}")


def vae_key(name: str, levels: int) -> str:
    side, _, rest = name.partition(".")
    if side in ("quant_conv", "post_quant_conv"):
        return name
    for hf, ldm in (("conv_norm_out.", "norm_out."), ("conv_in.", "conv_in."), ("conv_out.", "conv_out.")):
        if rest.startswith(hf):
            return f"{side}.{ldm}{rest[len(hf):]}"
    parts = rest.split(".")
    if parts[0] == "mid_block":
        if parts[1] == "resnets":
            return f"{side}.mid.block_{int(parts[2]) + 1}.{_rename('.'.join(parts[3:]) + '.', VAE_RESNET_PARTS)[:-1]}"
        return f"{side}.mid.attn_1.{_rename('.'.join(parts[3:]) + '.', VAE_ATTENTION_PARTS)[:-1]}"
    level = int(parts[1])
    # The decoder's up blocks run from the lowest resolution; ldm numbers them from the highest.
    ldm_level = level if parts[0] == "down_blocks" else levels - 1 - level
    kind = "down" if parts[0] == "down_blocks" else "up"
    if parts[2] == "resnets":
        return f"{side}.{kind}.{ldm_level}.block.{parts[3]}.{_rename('.'.join(parts[4:]) + '.', VAE_RESNET_PARTS)[:-1]}"
    sampler = "downsample" if parts[2] == "downsamplers" else "upsample"
    return f"{side}.{kind}.{ldm_level}.{sampler}.{'.'.join(parts[4:])}"


def unet_to_ldm(state: dict[str, torch.Tensor], config: dict) -> dict[str, torch.Tensor]:
    return {UNET_PREFIX + unet_key(k, config): v for k, v in state.items()}


def vae_to_ldm(state: dict[str, torch.Tensor], levels: int) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        ldm = vae_key(k, levels)
        # ldm's VAE attention projections are 1x1 convolutions; diffusers' are Linear layers.
        if ".mid.attn_1." in ldm and ldm.endswith((".q.weight", ".k.weight", ".v.weight", ".proj_out.weight")):
            v = v.reshape(*v.shape, 1, 1)
        out[VAE_PREFIX + ldm] = v
    return out


def clip_to_ldm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {CLIP_PREFIX + k: v for k, v in state.items()}


OPEN_CLIP_PARTS = {"layer_norm1.": "ln_1.", "layer_norm2.": "ln_2.", "mlp.fc1.": "mlp.c_fc.", "mlp.fc2.": "mlp.c_proj.",
                   "self_attn.out_proj.": "attn.out_proj."}


def open_clip_to_ldm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers CLIPTextModel names -> OpenCLIP's, q/k/v concatenated into in_proj (diffusers splits them in thirds)."""
    out: dict[str, torch.Tensor] = {}
    fixed = {"text_model.embeddings.token_embedding.weight": "token_embedding.weight",
             "text_model.embeddings.position_embedding.weight": "positional_embedding",
             "text_model.final_layer_norm.weight": "ln_final.weight", "text_model.final_layer_norm.bias": "ln_final.bias"}
    for k, v in state.items():
        if k in fixed:
            out[OPEN_CLIP_PREFIX + fixed[k]] = v
            continue
        layer, rest = k.removeprefix("text_model.encoder.layers.").split(".", 1)
        base = f"{OPEN_CLIP_PREFIX}transformer.resblocks.{layer}."
        if rest.startswith("self_attn.") and rest.split(".")[1] in ("q_proj", "k_proj", "v_proj"):
            kind = rest.split(".")[2]
            if rest.startswith("self_attn.q_proj."):
                packed = torch.cat([state[f"text_model.encoder.layers.{layer}.self_attn.{p}_proj.{kind}"] for p in "qkv"])
                out[f"{base}attn.in_proj_{kind}"] = packed
            continue
        out[base + _rename(rest, OPEN_CLIP_PARTS)] = v
    return out


def sdxl_unet_to_ldm(state: dict[str, torch.Tensor], config: dict) -> dict[str, torch.Tensor]:
    """SD's renaming plus SDXL's added-conditioning MLP (diffusers' add_embedding, SGM's label_emb.0)."""
    extra = {k: v for k, v in state.items() if k.startswith("add_embedding.")}
    out = unet_to_ldm({k: v for k, v in state.items() if k not in extra}, config)
    for k, v in extra.items():
        layer, rest = k.removeprefix("add_embedding.linear_").split(".", 1)
        out[f"{UNET_PREFIX}label_emb.0.{2 * int(layer) - 2}.{rest}"] = v
    return out


def big_g_to_sgm(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """A transformers CLIPTextModelWithProjection state (OpenCLIP bigG) as SGM stores it under `prefix` (SDXL base's
    conditioner.embedders.1.model., the refiner's .0.model.): OpenCLIP names, text_projection as [width, projection]."""
    text = {k: v for k, v in state.items() if k.startswith("text_model.") and not k.endswith("position_ids")}
    out = {prefix + k.removeprefix(OPEN_CLIP_PREFIX): v for k, v in open_clip_to_ldm(text).items()}
    out[prefix + "text_projection"] = state["text_projection.weight"].T
    return out


def check_round_trip(checkpoint: dict[str, torch.Tensor], originals: dict[str, dict[str, torch.Tensor]], configs: dict[str, dict],
                     text_model: object | None = None) -> int:
    """diffusers' ldm -> diffusers converters must give back every original tensor exactly.

    originals: per component ('unet', 'vae', 'text_encoder') the diffusers/transformers state dict (for OpenCLIP
    every block the file holds, the unused last one included); configs: the UNet and VAE diffusers configs. For an
    OpenCLIP text encoder pass a transformers text_model (the converter reads its projection width from it).
    """
    from diffusers.loaders.single_file_utils import (convert_ldm_clip_checkpoint, convert_ldm_unet_checkpoint,
                                                     convert_ldm_vae_checkpoint, convert_open_clip_checkpoint)

    back = {
        "unet": convert_ldm_unet_checkpoint(dict(checkpoint), configs["unet"]),
        "vae": convert_ldm_vae_checkpoint(dict(checkpoint), configs["vae"]),
    }
    if "text_encoder" in originals:
        if text_model is None:
            back["text_encoder"] = convert_ldm_clip_checkpoint(dict(checkpoint))
        else:
            back["text_encoder"] = convert_open_clip_checkpoint(text_model, dict(checkpoint))
    return assert_recovered(back, originals)


def assert_recovered(back: dict[str, dict[str, torch.Tensor]], originals: dict[str, dict[str, torch.Tensor]],
                     skip=lambda key: False) -> int:
    """Every original tensor (but the skipped keys) given back exactly, none extra; the number checked."""
    checked = 0
    for part, original in originals.items():
        got = {k: v for k, v in back[part].items() if not skip(k)}
        want = {k: v for k, v in original.items() if not skip(k)}
        if set(got) != set(want):
            missing, extra = set(want) - set(got), set(got) - set(want)
            raise AssertionError(f"{part}: {len(missing)} tensors not recovered (e.g. {sorted(missing)[:3]}), {len(extra)} unexpected (e.g. {sorted(extra)[:3]})")
        for k, v in want.items():
            if not torch.equal(got[k].reshape(v.shape), v):
                raise AssertionError(f"{part}: {k} differs after the round trip")
            checked += 1
    return checked


def save_checkpoint(checkpoint: dict[str, torch.Tensor], dest) -> None:
    """One safetensors file, written beside its destination and renamed: never a partial checkpoint at `dest`."""
    from safetensors.torch import save_file

    tmp = dest.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in checkpoint.items()}, str(tmp))
    tmp.rename(dest)
