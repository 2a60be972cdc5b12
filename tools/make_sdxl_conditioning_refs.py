"""SDXL prompt-weighting references: A1111's and ComfyUI's own SDXL conditioning code around tiny-sdxl's encoders.

The two torch text encoders are tiny-sdxl's (tools/sdxl_fixture_models.py rebuilds them from their seeds: a
CLIPTextModel as clip_l, a CLIPTextModelWithProjection as clip_g), read with the fixture's tokenizers.

A1111 (--a1111, a stable-diffusion-webui checkout; modules/prompt_parser.py, sd_emphasis.py, sd_hijack_clip.py,
sd_hijack_open_clip.py imported by path with tools/make_prompt_refs.py's stubs):
  - clip_l: FrozenCLIPEmbedderForSDXLWithCustomWords around {tokenizer, transformer, layer "hidden", layer_idx -2},
    as sgm's FrozenCLIPEmbedder is configured in SDXL's sd_xl_base.yaml;
  - clip_g: FrozenOpenCLIPEmbedder2WithCustomWords around an object whose encode_with_transformer returns
    {"penultimate": hidden_states[-2], "pooled": text_embeds} (sgm's FrozenOpenCLIPEmbedder2: the input of the last
    block, and ln_final + text_projection at the EOS position), layer "penultimate", return_pooled; pad id 0.
    open_clip's tokenizer is stubbed by the fixture's tokenizer_2 with its specials under open_clip's names
    (<start_of_text>, <end_of_text>); both lowercase and clean whitespace alike on the ASCII prompts used here;
  - the conditioner: each embedder's forward(texts) -> (z, zs[0].pooled) for clip_g, z for clip_l, crossattn the
    two z joined along the last dimension in embedder order (sgm's GeneralConditioner), pooled clip_g's;
    prompt_parser.get_learned_conditioning over the schedule, reconstruct_cond_batch for each denoiser call.
  Settings: emphasis "Original", comma_padding_backtrack 20, sdxl_clip_l_skip False, no textual inversion.

ComfyUI (--comfyui, a ComfyUI checkout; comfy/sd1_clip.py and comfy/sdxl_clip.py imported as the `comfy` package):
  SDXLTokenizer.tokenize_with_weights then SDXLClipModel.encode_token_weights, as CLIP.encode_from_tokens runs them
  for CLIPTextEncode (no clip skip set). Stubbed: comfy.ops (manual_cast: a marker, the stub model ignores it),
  comfy.model_management (intermediate_device: the CPU) and comfy.clip_model.CLIPTextModel: the tiny transformers
  encoder chosen by the config ComfyUI reads (sd1_clip_config.json -> clip_l, clip_config_bigg.json -> clip_g),
  returning (last hidden state, the output of layer `intermediate_output` (negative counts from the end, as
  comfy.clip_model's CLIPEncoder), final layer norm on it only when asked, text_embeds, pooler output). ComfyUI's
  sd1_tokenizer folder (read by both its tokenizers) is the fixture's tokenizer/, and its hard-coded CLIP special
  ids 49406/49407 become the tiny vocabulary's BOS/EOS (pad 0 for clip_g kept).

Where ComfyUI reads a prompt into other tokens or weights than A1111 (its own bracket grammar, no [] or BREAK or
prompt editing, whole segments kept together across chunks) no ComfyUI hidden states are written, only both
readings; `comfy_same_reading` says which, computed here and checked against EXPECT_SAME_READING.

The committed references were made from partial checkouts (/tmp/refsrc/a1111/modules, /tmp/refsrc/comfyui/comfy)
holding only these files, written out as GitHub's stored versions read them:
  stable-diffusion-webui  prompt_parser.py 0674fab, sd_emphasis.py f8391b8, sd_hijack_clip.py 00e0938,
                          sd_hijack_open_clip.py 01a40c6 (sd_models_xl.py 0bba67e read for the conditioner's join)
  ComfyUI                 comfy/sd1_clip.py b55c224, comfy/sdxl_clip.py 565d674, clip_config_bigg.json b6ab6d6,
                          sd1_clip_config.json 3502d90

Writes test/fixtures/sdxl-conditioning/: refs.json.gz and raw little-endian float32 .bin arrays.
Usage: /opt/diffuse-venv/bin/python tools/make_sdxl_conditioning_refs.py --a1111 PATH --comfyui PATH
"""
from __future__ import annotations

import argparse
import importlib
import sys
import types
from pathlib import Path

import torch
from transformers import CLIPTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sdxl_fixture_models as models  # noqa: E402
from fixtures_io import RefWriter  # noqa: E402
from make_conditioning_refs import first_chunk_length  # noqa: E402
from make_prompt_refs import OPTS, load_a1111  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURE = REPO_ROOT / "test" / "fixtures" / "tiny-sdxl"
OUT = REPO_ROOT / "test" / "fixtures" / "sdxl-conditioning"
MAX_BYTES = 300_000

SCENE = "a red house on a green hill under a blue sky with white clouds"


def long_prompt(commas: bool) -> str:
    """Over 75 tokens of the tiny vocabulary, one weighted word early; with commas every few words, or none."""
    colours = ("red", "yellow", "white", "black", "small")
    words = " and ".join(SCENE.replace("red", colour) for colour in colours).split()
    if commas:
        words = [w + "," if i % 5 == 4 else w for i, w in enumerate(words)]
    return "(glowing:1.2) " + " ".join(words)


# (name, prompt, steps)
CASES = [
    ("plain", "a photo of a cat", 10),
    ("emphasis", "a (red:1.3) apple on a table", 10),
    ("de-emphasis", "a cat in [snow]", 10),
    ("nested", "((masterpiece)), a ((cat)) on grass", 10),
    ("nested-weight", "(a (red:1.3) cat:1.2)", 10),
    ("break", "a (cat:1.2) BREAK a dog", 10),
    ("long", long_prompt(commas=False), 10),
    ("long-commas", long_prompt(commas=True), 10),
    ("empty", "", 10),
    ("editing", "a (photo:1.2) of a [cat:dog:0.5]", 10),
]

# ComfyUI reads these like A1111 (same ids and weights per encoder); the rest differ, see the README.
EXPECT_SAME_READING = {"plain", "emphasis", "nested", "long", "empty"}


def tiny_ids() -> tuple[int, int]:
    tokenizer = CLIPTokenizer.from_pretrained(str(FIXTURE / "tokenizer"))
    return tokenizer.bos_token_id, tokenizer.eos_token_id


class OpenClipTokenizer:
    """What A1111 reads of open_clip.tokenizer._tokenizer: `encoder` (token -> id) and encode(text) without specials."""

    def __init__(self, tokenizer: CLIPTokenizer) -> None:
        names = {tokenizer.bos_token: "<start_of_text>", tokenizer.eos_token: "<end_of_text>"}
        self.encoder = {names.get(token, token): i for token, i in tokenizer.get_vocab().items()}
        self._tokenizer = tokenizer

    def encode(self, text: str) -> list[int]:
        return self._tokenizer(text, add_special_tokens=False)["input_ids"]


def load_a1111_sdxl(checkout: Path, tokenizer_2: CLIPTokenizer):
    open_clip = types.ModuleType("open_clip")
    open_clip.__path__ = []
    open_clip_tokenizer = types.ModuleType("open_clip.tokenizer")
    open_clip_tokenizer._tokenizer = OpenClipTokenizer(tokenizer_2)
    open_clip.tokenizer = open_clip_tokenizer
    sys.modules["open_clip"] = open_clip
    sys.modules["open_clip.tokenizer"] = open_clip_tokenizer
    OPTS.sdxl_clip_l_skip = False
    return load_a1111(checkout, extra=("sd_hijack_open_clip",))


def a1111_embedders(a1111, tokenizer: CLIPTokenizer, clip_l, clip_g):
    hijack = types.SimpleNamespace(
        embedding_db=types.SimpleNamespace(find_embedding_at_position=lambda tokens, position: (None, None)),
        fixes=None,
        extra_generation_params={},
    )
    wrapped_l = types.SimpleNamespace(tokenizer=tokenizer, transformer=clip_l, layer="hidden", layer_idx=-2)

    def encode_with_transformer(tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        out = clip_g(input_ids=tokens, output_hidden_states=True)
        return {"penultimate": out.hidden_states[-2], "pooled": out.text_embeds}

    wrapped_g = types.SimpleNamespace(layer="penultimate", return_pooled=True, encode_with_transformer=encode_with_transformer)
    return (
        a1111.sd_hijack_clip.FrozenCLIPEmbedderForSDXLWithCustomWords(wrapped_l, hijack),
        a1111.sd_hijack_open_clip.FrozenOpenCLIPEmbedder2WithCustomWords(wrapped_g, hijack),
    )


def a1111_reading(embedder, text: str) -> list[list[list[float]]]:
    """[chunk][token] -> [id as encoded (pad after the first EOS as process_tokens sets it), weight]."""
    chunks, _ = embedder.tokenize_line(text)
    out = []
    for chunk in chunks:
        ids = list(chunk.tokens)
        if embedder.id_end != embedder.id_pad:
            first_end = ids.index(embedder.id_end)
            ids[first_end + 1 :] = [embedder.id_pad] * (len(ids) - first_end - 1)
        out.append([[i, w] for i, w in zip(ids, chunk.multipliers)])
    return out


class TinyClipTextModel(torch.nn.Module):
    """comfy.clip_model.CLIPTextModel's interface over a tiny transformers encoder (picked by the config's width)."""

    encoders: dict[int, torch.nn.Module] = {}

    def __init__(self, config: dict, dtype, device, operations) -> None:
        super().__init__()
        self.model = self.encoders[config["hidden_size"]]
        self.num_layers = self.model.config.num_hidden_layers

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, embeddings) -> None:
        self.model.set_input_embeddings(embeddings)

    def forward(self, tokens, attention_mask=None, intermediate_output=None, final_layer_norm_intermediate=True, dtype=torch.float32):
        if attention_mask is not None:
            raise AssertionError("ComfyUI's SDXL encoders run without attention masks")
        out = self.model(input_ids=tokens, output_hidden_states=True)
        intermediate = None
        if intermediate_output is not None:
            layer = intermediate_output if intermediate_output >= 0 else self.num_layers + intermediate_output
            intermediate = out.hidden_states[layer + 1]
            if final_layer_norm_intermediate:
                intermediate = self.model.text_model.final_layer_norm(intermediate)
        return out.last_hidden_state, intermediate, getattr(out, "text_embeds", None), getattr(out, "pooler_output", None)


def load_comfy(checkout: Path, clip_l, clip_g):
    package = types.ModuleType("comfy")
    package.__path__ = [str(checkout / "comfy")]
    sys.modules["comfy"] = package
    stubs = {
        "ops": {"manual_cast": object()},
        "model_management": {"intermediate_device": lambda: torch.device("cpu")},
        "clip_model": {"CLIPTextModel": TinyClipTextModel},
    }
    for name, attributes in stubs.items():
        module = types.ModuleType(f"comfy.{name}")
        module.__dict__.update(attributes)
        sys.modules[f"comfy.{name}"] = module
        setattr(package, name, module)
    TinyClipTextModel.encoders = {768: clip_l, 1280: clip_g}
    sd1_clip = importlib.import_module("comfy.sd1_clip")
    sdxl_clip = importlib.import_module("comfy.sdxl_clip")

    class FixtureTokenizer(CLIPTokenizer):
        """ComfyUI's sd1_tokenizer folder, here the fixture's tokenizer/."""

        @classmethod
        def from_pretrained(cls, path, *args, **kwargs):
            return CLIPTokenizer.from_pretrained(str(FIXTURE / "tokenizer"), *args, **kwargs)

    defaults = sd1_clip.SDTokenizer.__init__.__defaults__
    sd1_clip.SDTokenizer.__init__.__defaults__ = tuple(FixtureTokenizer if d is CLIPTokenizer else d for d in defaults)
    tokenizer = sdxl_clip.SDXLTokenizer()
    model = sdxl_clip.SDXLClipModel()
    bos, eos = tiny_ids()
    model.clip_l.special_tokens = {"start": bos, "end": eos, "pad": eos}
    model.clip_g.special_tokens = {"start": bos, "end": eos, "pad": 0}
    return tokenizer, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a1111", type=Path, required=True, help="stable-diffusion-webui checkout")
    parser.add_argument("--comfyui", type=Path, required=True, help="ComfyUI checkout")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    tokenizer = CLIPTokenizer.from_pretrained(str(FIXTURE / "tokenizer"))
    tokenizer_2 = CLIPTokenizer.from_pretrained(str(FIXTURE / "tokenizer_2"))
    clip_l = models.build_text_encoder()
    clip_g = models.build_text_encoder_2()
    a1111 = load_a1111_sdxl(args.a1111, tokenizer_2)
    embed_l, embed_g = a1111_embedders(a1111, tokenizer, clip_l, clip_g)
    comfy_tokenizer, comfy_model = load_comfy(args.comfyui, clip_l, clip_g)
    prompt_parser = a1111.prompt_parser

    def sdxl_conditioner(texts: list[str]) -> list[dict[str, torch.Tensor]]:
        z_l = embed_l(texts)
        z_g, pooled = embed_g(texts)
        crossattn = torch.cat([z_l, z_g], dim=-1)
        return [{"crossattn": crossattn[i], "pooled": pooled[i]} for i in range(len(texts))]

    sd_model = types.SimpleNamespace(get_learned_conditioning=sdxl_conditioner)
    writer = RefWriter(OUT)
    cases = []
    for name, prompt, steps in CASES:
        with torch.no_grad():
            [schedule] = prompt_parser.get_learned_conditioning(sd_model, [prompt], steps)
            by_crossattn = [[prompt_parser.ScheduledPromptConditioning(e.end_at_step, e.cond["crossattn"]) for e in schedule]]
            picked = [prompt_parser.reconstruct_cond_batch(by_crossattn, call)[0] for call in range(steps)]
            texts = [text for _, text in prompt_parser.get_learned_conditioning_prompt_schedules([prompt], steps)[0]]
            a1111_schedule = [
                {
                    "end_step": e.end_at_step,
                    "text": text,
                    "hidden": writer.array(f"{name}_a1111_{i}", e.cond["crossattn"]),
                    "pooled": writer.array(f"{name}_a1111_{i}_pooled", e.cond["pooled"]),
                }
                for i, (e, text) in enumerate(zip(schedule, texts))
            ]
            calls = [next(i for i, e in enumerate(schedule) if torch.equal(e.cond["crossattn"], p)) for p in picked]

            comfy_tokens = comfy_tokenizer.tokenize_with_weights(prompt)
            comfy_reading = {key: [[[int(t), float(w)] for t, w in chunk] for chunk in comfy_tokens[key]] for key in ("l", "g")}
            a1111_read = {"l": a1111_reading(embed_l, prompt), "g": a1111_reading(embed_g, prompt)}
            if name.startswith("long") and len(a1111_read["l"]) != 2:
                raise AssertionError(f"{name}: the long prompts must take two chunks")
            if name.startswith("long") and (first_chunk_length(embed_l, prompt) < embed_l.chunk_length) != (name == "long-commas"):
                raise AssertionError(f"{name}: A1111 must move text after a comma to the next chunk in long-commas alone")
            same = len(schedule) == 1 and comfy_reading == a1111_read
            if same != (name in EXPECT_SAME_READING):
                raise AssertionError(f"{name}: ComfyUI reads the prompt {'like' if same else 'unlike'} A1111, against EXPECT_SAME_READING")
            comfy = {"reading": comfy_reading}
            if same:
                hidden, pooled = comfy_model.encode_token_weights(comfy_tokens)
                comfy["hidden"] = writer.array(f"{name}_comfy", hidden[0])
                comfy["pooled"] = writer.array(f"{name}_comfy_pooled", pooled[0])
        cases.append({"name": name, "prompt": prompt, "steps": steps, "a1111": a1111_schedule, "calls": calls,
                      "a1111_reading": a1111_read, "comfy_same_reading": same, "comfy": comfy})
        print(f"{name}: {len(schedule)} text(s), {a1111_schedule[0]['hidden']['shape'][0]} tokens, ComfyUI reads it {'alike' if same else 'differently'}")

    writer.manifest_gz(
        "refs.json.gz",
        {
            "generator": "tools/make_sdxl_conditioning_refs.py",
            "conventions": {
                "hidden": "cross-attention conditioning of one text: [chunks * 77, 16 + 24] (clip_l then clip_g), raw little-endian float32",
                "pooled": "clip_g's pooled (projected) output of the text's first chunk, [12]",
                "calls": "per denoiser call (0-based), the schedule index A1111's reconstruct_cond_batch picks",
                "reading": "per encoder (l, g), per chunk, [token id as encoded, weight]",
                "a1111": "emphasis Original, comma_padding_backtrack 20, sdxl_clip_l_skip False",
                "comfy": "hidden/pooled only where comfy_same_reading (ComfyUI reads the prompt as A1111 does)",
            },
            "cases": cases,
        },
    )
    total = sum((OUT / f).stat().st_size for f in writer.files)
    if total > MAX_BYTES:
        raise AssertionError(f"references take {total} bytes, over the {MAX_BYTES} budget")
    print(f"wrote {len(writer.files)} files ({total / 1e3:.0f} kB) to {OUT}")


if __name__ == "__main__":
    main()
