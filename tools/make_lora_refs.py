"""LoRA, LyCORIS and hypernetwork references for diffuse's merges (src/graphs/lora/, src/graphs/hypernetwork*): test/fixtures/lora/.

On the graph builder's `sd1` test model (test/fixtures/graphs/sd1.recipe.json.gz; loaded through diffusers' single-file
converters as tools/make_graph_fixtures.py does), small network files with seeded values and the final latents of a
4-step Euler txt2img with diffusers' StableDiffusionPipeline after each is applied:
- kohya LoRA with LoCon layers (lora_unet_*/lora_te_*, .alpha; attention, feed-forward, 1x1 and 3x3 convolutions,
  time projections): diffusers' load_lora_weights + fuse_lora (the multiplier as lora_scale);
- diffusers/PEFT LoRA (unet.*/text_encoder.* with lora_A/lora_B, no alpha) made by peft on the modules and saved by
  StableDiffusionPipeline.save_lora_weights: load_lora_weights + fuse_lora;
- LoHa and LoKr (LyCORIS' kohya-named keys; LoKr with a factored and a full Kronecker factor, LoHa also on a 3x3
  convolution) and a LoRA with a CP `lora_mid` core: diffusers cannot load these, so the merged weights are computed
  here in torch from LyCORIS' definitions (W + multiplier * alpha/rank * dW) and loaded into the modules;
- an A1111 hypernetwork (.pt as A1111's Hypernetwork.save writes it: sizes 32 and 64, the self-attention widths;
  layer structure [1, 2, 1], layer norm, Hardswish ("swish")), applied by an attention processor that feeds the k
  and v projections through A1111's HypernetworkModule forward: x + linear(x) * multiplier;
- on test/fixtures/tiny-sd (optimum's export; torch modules rebuilt from their seeds) a kohya LoCon file and a
  hypernetwork whose width 32 is also the text's (cross-attention).

Usage: /opt/diffuse-venv/bin/python tools/make_lora_refs.py   (under a minute; deterministic)
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline  # noqa: E402
from transformers import CLIPTokenizer  # noqa: E402

from fixtures_io import RefWriter  # noqa: E402
from fixtures_cases import scheduler_record  # noqa: E402
from fixtures_models import SD15_SCHEDULER_CONFIG, build_txt2img_pipeline  # noqa: E402
from graph_fixture_models import SPECS  # noqa: E402
from make_graph_fixtures import load_modules  # noqa: E402
from synthetic_checkpoint import tensors  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "test" / "fixtures" / "lora"
TOKENIZER_DIR = REPO / "test" / "fixtures" / "tiny-sd" / "tokenizer"
SPEC = next(s for s in SPECS if s.name == "sd1")
CASE = {"prompt": "a photo of an astronaut riding a horse", "negative_prompt": "blurry", "guidance_scale": 7.5, "num_inference_steps": 4,
        "width": 32, "height": 32, "seed": 5}

UNET_LINEAR = ["attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0",
               "ff.net.0.proj", "ff.net.2"]
TE_LINEAR = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "mlp.fc1", "mlp.fc2"]


def tiny_modules():
    """test/fixtures/tiny-sd's torch modules (optimum's export of them is the fixture): rebuilt from their fixed seeds."""
    pipe = build_txt2img_pipeline(TOKENIZER_DIR)
    return {"unet": pipe.unet, "vae": pipe.vae, "text_encoder": pipe.text_encoder}


def modules():
    recipe = json.loads(gzip.decompress((REPO / "test/fixtures/graphs/sd1.recipe.json.gz").read_bytes()))
    return load_modules(SPEC, tensors(recipe))


def pipeline(mods) -> StableDiffusionPipeline:
    tokenizer = CLIPTokenizer.from_pretrained(str(TOKENIZER_DIR))
    scheduler = EulerDiscreteScheduler.from_config(SD15_SCHEDULER_CONFIG)
    return StableDiffusionPipeline(vae=mods["vae"], text_encoder=mods["text_encoder"], tokenizer=tokenizer, unet=mods["unet"], scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def latents(pipe: StableDiffusionPipeline, prompt: str = CASE["prompt"]) -> torch.Tensor:
    out = pipe(prompt, negative_prompt=CASE["negative_prompt"], guidance_scale=CASE["guidance_scale"], num_inference_steps=CASE["num_inference_steps"],
               width=CASE["width"], height=CASE["height"], generator=torch.Generator().manual_seed(CASE["seed"]), output_type="latent").images
    if float(out.std()) < 1e-3:
        raise AssertionError("constant latents")
    return out


def targets(mods) -> dict[str, tuple[str, torch.nn.Module]]:
    """kohya name -> (component, module) for the layers the files below patch."""
    out = {}
    for name, m in mods["unet"].named_modules():
        if any(name.endswith(s) for s in UNET_LINEAR) or name.endswith(("proj_in", "proj_out", "conv1", "conv2", "conv_shortcut", "time_emb_proj", "downsamplers.0.conv", "upsamplers.0.conv")):
            out["lora_unet_" + name.replace(".", "_")] = ("unet", m)
    for name, m in mods["text_encoder"].named_modules():
        if any(name.endswith(s) for s in TE_LINEAR):
            out["lora_te_" + name.replace(".", "_")] = ("text_encoder", m)
    return out


def rand(g: torch.Generator, *shape: int, scale: float = 0.3) -> torch.Tensor:
    """Uniform values exactly representable in float16 (the files store F16, as most shared LoRAs do)."""
    return ((torch.rand(*shape, generator=g) * 2 - 1) * scale).half().float()


def half(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.half() for k, v in sd.items()}


def kohya_locon(mods, g: torch.Generator) -> dict[str, torch.Tensor]:
    """Rank 4 everywhere; 3x3 convolutions get a 3x3 down and a 1x1 up (LoCon); one alpha for every module, as kohya
    writes it (diffusers 0.32 applies one alpha per attention block: per-module alphas are the LyCORIS case's)."""
    sd = {}
    for key, (_, m) in sorted(targets(mods).items()):
        rank = 4
        if isinstance(m, torch.nn.Conv2d):
            k = m.kernel_size
            sd[f"{key}.lora_down.weight"] = rand(g, rank, m.in_channels, *k)
            sd[f"{key}.lora_up.weight"] = rand(g, m.out_channels, rank, 1, 1)
        else:
            sd[f"{key}.lora_down.weight"] = rand(g, rank, m.in_features)
            sd[f"{key}.lora_up.weight"] = rand(g, m.out_features, rank)
        sd[f"{key}.alpha"] = torch.tensor(2.0)
    return sd


def peft_lora(mods, g: torch.Generator, folder: Path) -> Path:
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    unet, text = mods["unet"], mods["text_encoder"]
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False, target_modules=["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out"]))
    text.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False, target_modules=["q_proj", "k_proj", "v_proj", "out_proj"]))
    for model in (unet, text):
        for name, p in model.named_parameters():
            if "lora_" in name:
                with torch.no_grad():
                    p.copy_(rand(g, *p.shape))
    StableDiffusionPipeline.save_lora_weights(str(folder), unet_lora_layers=get_peft_model_state_dict(unet), text_encoder_lora_layers=get_peft_model_state_dict(text),
                                              safe_serialization=True)
    return folder / "pytorch_lora_weights.safetensors"


def lycoris(mods, g: torch.Generator) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """LoHa on attention and one 3x3 conv, LoKr on feed-forward, a CP-core LoRA on another 3x3 conv; returns (file, torch deltas)."""
    sd, deltas = {}, {}
    for key, (_, m) in sorted(targets(mods).items()):
        shape = m.weight.shape
        out_f, in_f = shape[0], shape[1] * (shape[2] * shape[3] if len(shape) == 4 else 1)
        if key.endswith(("attn1_to_q", "attn2_to_v", "self_attn_k_proj")) or key.endswith("down_blocks_0_resnets_0_conv1"):
            r = 3
            w1a, w1b, w2a, w2b = rand(g, out_f, r), rand(g, r, in_f), rand(g, out_f, r), rand(g, r, in_f)
            sd.update({f"{key}.hada_w1_a": w1a, f"{key}.hada_w1_b": w1b, f"{key}.hada_w2_a": w2a, f"{key}.hada_w2_b": w2b, f"{key}.alpha": torch.tensor(2.0)})
            deltas[key] = ((w1a @ w1b) * (w2a @ w2b)).reshape(shape) * (2.0 / r)
        elif key.endswith("ff_net_0_proj"):
            # [256, 32] = kron([4, 2] full, [64, 16] as a rank-2 product): rank = w2_b's.
            w1, w2a, w2b = rand(g, 4, 2), rand(g, out_f // 4, 2), rand(g, 2, in_f // 2)
            sd.update({f"{key}.lokr_w1": w1, f"{key}.lokr_w2_a": w2a, f"{key}.lokr_w2_b": w2b, f"{key}.alpha": torch.tensor(1.0)})
            deltas[key] = torch.kron(w1, w2a @ w2b).reshape(shape) * (1.0 / 2)
        elif key.endswith("ff_net_2"):
            # Both factors full: no rank, scale 1 whatever alpha says.
            w1, w2 = rand(g, 2, 4), rand(g, out_f // 2, in_f // 4)
            sd.update({f"{key}.lokr_w1": w1, f"{key}.lokr_w2": w2, f"{key}.alpha": torch.tensor(7.0)})
            deltas[key] = torch.kron(w1, w2).reshape(shape)
        elif key.endswith("up_blocks_1_resnets_0_conv2"):
            r = 2
            up, mid, down = rand(g, out_f, r, 1, 1), rand(g, r, r, 3, 3), rand(g, r, shape[1], 1, 1)
            sd.update({f"{key}.lora_up.weight": up, f"{key}.lora_mid.weight": mid, f"{key}.lora_down.weight": down, f"{key}.alpha": torch.tensor(1.0)})
            deltas[key] = torch.einsum("n m k l, i n, m j -> i j k l", mid, up.reshape(out_f, r), down.reshape(r, shape[1])) * (1.0 / r)
    return sd, deltas


def merged_latents(deltas: dict[str, torch.Tensor], multiplier: float) -> torch.Tensor:
    mods = modules()
    found = targets(mods)
    with torch.no_grad():
        for key, d in deltas.items():
            found[key][1].weight += multiplier * d
    return latents(pipeline(mods))


class HypernetworkModule(torch.nn.Module):
    """A1111's HypernetworkModule at inference: Linear layers with the activation between (not after the last unless
    activate_output), LayerNorm after each when is_layer_norm; forward x + linear(x) * multiplier."""

    def __init__(self, dim: int, structure: list[float], activation, layer_norm: bool, multiplier: float) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = []
        for i in range(len(structure) - 1):
            layers.append(torch.nn.Linear(int(dim * structure[i]), int(dim * structure[i + 1])))
            if i < len(structure) - 2:
                layers.append(activation())
            if layer_norm:
                layers.append(torch.nn.LayerNorm(int(dim * structure[i + 1])))
        self.linear = torch.nn.Sequential(*layers)
        self.multiplier = multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.linear(x) * self.multiplier


class HyperProcessor:
    """diffusers' AttnProcessor with A1111's hook: the context of k and v goes through the hypernetwork of its width."""

    def __init__(self, layers: dict[int, tuple[HypernetworkModule, HypernetworkModule]]) -> None:
        self.layers = layers

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        pair = self.layers.get(context.shape[-1])
        ck, cv = (pair[0](context), pair[1](context)) if pair else (context, context)
        q = attn.head_to_batch_dim(attn.to_q(hidden_states))
        k = attn.head_to_batch_dim(attn.to_k(ck))
        v = attn.head_to_batch_dim(attn.to_v(cv))
        probs = attn.get_attention_scores(q, k, None)
        out = attn.batch_to_head_dim(torch.bmm(probs, v))
        return attn.to_out[1](attn.to_out[0](out))


def hypernetwork(g: torch.Generator, multiplier: float, sizes: tuple[int, ...] = (32, 64)) -> tuple[bytes, dict]:
    structure = [1, 2, 1]
    layers, saved = {}, {}
    for size in sizes:
        pair = tuple(HypernetworkModule(size, structure, torch.nn.Hardswish, True, multiplier) for _ in range(2))
        for module in pair:
            with torch.no_grad():
                for layer in module.linear:
                    if isinstance(layer, (torch.nn.Linear, torch.nn.LayerNorm)):
                        layer.weight.copy_((rand(g, *layer.weight.shape, scale=0.5) + (1.0 if isinstance(layer, torch.nn.LayerNorm) else 0.0)).half().float())
                        layer.bias.copy_(rand(g, *layer.bias.shape, scale=0.5))
        layers[size] = pair
        saved[size] = tuple({k: v.half() for k, v in m.state_dict().items()} for m in pair)
    saved.update({"step": 100, "name": "hyper", "layer_structure": structure, "activation_func": "swish", "is_layer_norm": True,
                  "weight_initialization": "Normal", "use_dropout": False, "sd_checkpoint": None, "sd_checkpoint_name": None,
                  "activate_output": False, "last_layer_dropout": False})
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    return buffer.getvalue(), layers


def addnet_hash(data: bytes) -> str:
    """A1111's LoRA short hash: SHA-256 of a safetensors file after its header (kohya's addnet hash), 12 hex digits."""
    n = int.from_bytes(data[:8], "little")
    return hashlib.sha256(data[8 + n:]).hexdigest()[:12]


def main() -> None:
    torch.manual_seed(0)
    w = RefWriter(OUT)
    g = torch.Generator().manual_seed(1234)
    cases = []
    scheduler = pipeline(modules()).scheduler
    record = scheduler_record("EulerDiscreteScheduler", {}, scheduler)
    base = dict(CASE)
    cases.append({**base, "name": "none", "final_latents": w.array("none.latents", latents(pipeline(modules())))})

    kohya = kohya_locon(modules(), g)
    (OUT / "kohya_locon.safetensors").write_bytes(save(half(kohya), metadata={"ss_network_module": "networks.lora", "ss_v2": "False"}))
    w.files.add("kohya_locon.safetensors")
    for name, te, unet in (("kohya_locon-0.8", 0.8, 0.8), ("kohya_locon-te1-unet0.5", 1.0, 0.5)):
        pipe = pipeline(modules())
        pipe.load_lora_weights(str(OUT / "kohya_locon.safetensors"), adapter_name="k")
        pipe.fuse_lora(components=["text_encoder"], lora_scale=te, adapter_names=["k"])
        pipe.fuse_lora(components=["unet"], lora_scale=unet, adapter_names=["k"])
        pipe.unload_lora_weights()
        cases.append({**base, "name": name, "lora": "kohya_locon", "te": te, "unet": unet, "final_latents": w.array(f"{name}.latents", latents(pipe))})

    scratch = Path("/tmp/diffuse-lora-refs")
    scratch.mkdir(exist_ok=True)
    peft_file = peft_lora(modules(), g, scratch)
    (OUT / "peft.safetensors").write_bytes(save(half(load_file(str(peft_file)))))
    w.files.add("peft.safetensors")
    pipe = pipeline(modules())
    pipe.load_lora_weights(str(OUT / "peft.safetensors"))
    pipe.fuse_lora(lora_scale=0.7)
    pipe.unload_lora_weights()
    cases.append({**base, "name": "peft-0.7", "lora": "peft", "te": 0.7, "unet": 0.7, "final_latents": w.array("peft-0.7.latents", latents(pipe))})

    lyco, deltas = lycoris(modules(), g)
    (OUT / "lycoris.safetensors").write_bytes(save(half(lyco)))
    w.files.add("lycoris.safetensors")
    cases.append({**base, "name": "lycoris-0.9", "lora": "lycoris", "te": 0.9, "unet": 0.9, "final_latents": w.array("lycoris-0.9.latents", merged_latents(deltas, 0.9))})

    hyper_bytes, _ = hypernetwork(torch.Generator().manual_seed(99), 1.0)
    (OUT / "hyper.pt").write_bytes(hyper_bytes)
    w.files.add("hyper.pt")
    for strength in (1.0, 0.6):
        mods = modules()
        _, layers = hypernetwork(torch.Generator().manual_seed(99), strength)
        mods["unet"].set_attn_processor(HyperProcessor(layers))
        cases.append({**base, "name": f"hyper-{strength}", "hypernetwork": "hyper", "strength": strength,
                      "final_latents": w.array(f"hyper-{strength}.latents", latents(pipeline(mods)))})

    # The same kinds of file on tiny-sd, whose graphs are optimum's export: MatMul weights without module names,
    # Gemm time projections, opset 14 (the hypernetwork's layer norm written out).
    cases.append({**base, "model": "tiny-sd", "name": "tiny-none", "final_latents": w.array("tiny-none.latents", latents(pipeline(tiny_modules())))})
    tiny_kohya = kohya_locon(tiny_modules(), g)
    (OUT / "tiny_kohya.safetensors").write_bytes(save(half(tiny_kohya)))
    w.files.add("tiny_kohya.safetensors")
    pipe = pipeline(tiny_modules())
    pipe.load_lora_weights(str(OUT / "tiny_kohya.safetensors"))
    pipe.fuse_lora(lora_scale=0.8)
    pipe.unload_lora_weights()
    cases.append({**base, "model": "tiny-sd", "name": "tiny-kohya-0.8", "lora": "tiny_kohya", "te": 0.8, "unet": 0.8, "final_latents": w.array("tiny-kohya-0.8.latents", latents(pipe))})
    tiny_hyper, _ = hypernetwork(torch.Generator().manual_seed(98), 1.0, (32, 64))
    (OUT / "tiny_hyper.pt").write_bytes(tiny_hyper)
    w.files.add("tiny_hyper.pt")
    mods = tiny_modules()
    _, layers = hypernetwork(torch.Generator().manual_seed(98), 0.8, (32, 64))
    mods["unet"].set_attn_processor(HyperProcessor(layers))
    cases.append({**base, "model": "tiny-sd", "name": "tiny-hyper-0.8", "hypernetwork": "tiny_hyper", "strength": 0.8,
                  "final_latents": w.array("tiny-hyper-0.8.latents", latents(pipeline(mods)))})

    # A plain pipeline with the processor but no hypernetwork equals the default one: the hook itself changes nothing.
    mods = modules()
    mods["unet"].set_attn_processor(HyperProcessor({}))
    plain = latents(pipeline(modules()))
    if float((latents(pipeline(mods)) - plain).abs().max()) > 1e-5 * float(plain.abs().max()):
        raise AssertionError("the hypernetwork processor without layers differs from diffusers' own attention")
    hashes = {f: addnet_hash((OUT / f"{f}.safetensors").read_bytes()) for f in ("kohya_locon", "peft", "lycoris", "tiny_kohya")}
    w.manifest("cases.json", {"hashes": hashes, "conventions": "tools/make_lora_refs.py; model: test/fixtures/graphs/sd1.recipe.json.gz; every case: Euler, the scheduler below",
                             "scheduler": record, "cases": cases})


if __name__ == "__main__":
    main()
