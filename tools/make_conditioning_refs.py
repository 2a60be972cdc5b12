"""End-to-end prompt conditioning references: AUTOMATIC1111's own code around the tiny torch text encoder.

For each prompt, A1111's prompt_parser.get_learned_conditioning (schedule -> one forward() batch of the scheduled
texts) runs with its FrozenCLIPEmbedderWithCustomWords (tokenize_line, 75-token chunks, comma backtracking,
sd_emphasis "Original" with mean restoration) wrapping transformers' CLIPTextModel rebuilt from the tiny-sd
fixture's seed (tools/fixtures_models.py, as tools/make_embedding_refs.py does). prompt_parser.reconstruct_cond_batch
then says which scheduled text each denoiser call (CFGDenoiser.step, counted from 0) conditions on.

One change to the tiny encoder: its final_layer_norm bias is set to FINAL_NORM_BIAS (saved with the references; the
test puts the same vector into the ONNX graph). Untrained, that bias is 0 and weight 1, so every output row has mean
~0 and the whole conditioning a mean of ~1e-9 against values ~1: A1111's emphasis rescale mean(z) / mean(z * w)
would be a ratio of two rounding errors (even NaN), where a real CLIP's means are far from 0.

Needs a stable-diffusion-webui checkout (never copied into this repo): its modules/prompt_parser.py,
sd_emphasis.py and sd_hijack_clip.py are imported by path with light stubs (tools/make_prompt_refs.py's loader).

Writes test/fixtures/conditioning/: refs.json and one raw little-endian float32 .bin per scheduled text.
Deterministic: fixed seed, single-threaded torch.

Usage: /opt/diffuse-venv/bin/python tools/make_conditioning_refs.py --a1111 /path/to/stable-diffusion-webui
"""
from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import torch
from transformers import CLIPTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fixtures_models as models  # noqa: E402
from fixtures_io import RefWriter  # noqa: E402
from make_prompt_refs import OPTS, load_a1111, make_embedder  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
TOKENIZER_DIR = REPO_ROOT / "test" / "fixtures" / "tiny-sd" / "tokenizer"
OUT = REPO_ROOT / "test" / "fixtures" / "conditioning"

FINAL_NORM_BIAS_SEED = 4321
LONG_WORDS = ["red", "house", "on", "a", "green", "hill", "under", "blue", "sky"]


def long_prompt() -> str:
    """Over 75 tokens, a comma every 7 words (so one falls within the last 20 tokens of the first chunk), weighted words."""
    parts = []
    for i in range(100):
        word = LONG_WORDS[i % len(LONG_WORDS)]
        parts.append(f"({word}:1.2)" if i % 11 == 3 else word)
        if i % 7 == 6:
            parts[-1] += ","
    return " ".join(parts)


# (name, prompt, steps, A1111 CLIP_stop_at_last_layers)
CASES = [
    ("plain", "a photo of a cat", 10, 1),
    ("weighted", "a (cat:1.3) in [snow]", 10, 1),
    ("nested", "((masterpiece)), a ((x)) on [[grass]]", 10, 1),
    ("long", long_prompt(), 10, 1),
    ("break", "a (cat:1.2) BREAK a dog in [snow]", 10, 1),
    ("editing", "a (photo:1.2) of a [cat:dog:0.5]", 10, 1),
    ("alternation", "a [cat|(dog:1.2)] in snow", 10, 1),
    ("empty", "", 10, 1),
    ("clip-skip-2", "a (cat:1.3) in [snow]", 10, 2),
]


def final_norm_bias(width: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(FINAL_NORM_BIAS_SEED)
    return 0.5 + 0.25 * torch.randn(width, generator=generator)


def make_wrapped_embedder(a1111, tokenizer: CLIPTokenizer, text_encoder):
    """A1111's FrozenCLIPEmbedderWithCustomWords around the tiny encoder; no textual-inversion embeddings."""
    embedder = make_embedder(a1111, tokenizer)
    # What ldm's FrozenCLIPEmbedder holds: the transformers model A1111's encode_with_transformers calls.
    embedder.wrapped.transformer = text_encoder
    return embedder


def first_chunk_length(embedder, text: str) -> int:
    """Prompt tokens in the first chunk (a full chunk holds 75; backtracking leaves fewer)."""
    chunks, _ = embedder.tokenize_line(text)
    first = chunks[0].tokens[1:-1]
    while first and first[-1] == embedder.id_end:
        first.pop()
    return len(first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a1111", type=Path, required=True, help="stable-diffusion-webui checkout")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    a1111 = load_a1111(args.a1111)
    tokenizer = CLIPTokenizer.from_pretrained(str(TOKENIZER_DIR))
    text_encoder = models.build_text_encoder()
    bias = final_norm_bias(text_encoder.config.hidden_size)
    with torch.no_grad():
        text_encoder.text_model.final_layer_norm.bias.copy_(bias)
    embedder = make_wrapped_embedder(a1111, tokenizer, text_encoder)
    # LatentDiffusion.get_learned_conditioning hands the texts to the (hijacked) cond_stage_model.
    sd_model = types.SimpleNamespace(get_learned_conditioning=embedder)
    parser_module = a1111.prompt_parser

    writer = RefWriter(OUT)
    bias_ref = writer.array("final_layer_norm_bias", bias)
    cases = []
    for name, prompt, steps, clip_skip in CASES:
        OPTS.CLIP_stop_at_last_layers = clip_skip
        with torch.no_grad():
            [schedule] = parser_module.get_learned_conditioning(sd_model, [prompt], steps)
            # A1111 builds the schedule over the sampler's denoiser calls (processing.setup_conds: total_steps), so
            # calls run 0 .. steps - 1 of the schedule's steps.
            picked = [parser_module.reconstruct_cond_batch([schedule], call)[0] for call in range(steps)]
        texts = [text for _, text in parser_module.get_learned_conditioning_prompt_schedules([prompt], steps)[0]]
        entries = [
            {"end_step": entry.end_at_step, "text": text, "hidden": writer.array(f"{name}_{i}", entry.cond)}
            for i, (entry, text) in enumerate(zip(schedule, texts))
        ]
        calls = [next(i for i, e in enumerate(schedule) if torch.equal(e.cond, p)) for p in picked]
        cases.append({"name": name, "prompt": prompt, "steps": steps, "clip_skip": clip_skip, "schedule": entries, "calls": calls})
    OPTS.CLIP_stop_at_last_layers = 1

    backtracked = first_chunk_length(embedder, long_prompt())
    if backtracked >= embedder.chunk_length:
        raise AssertionError("the long prompt must make A1111 move text after a comma to the next chunk")
    writer.manifest(
        "refs.json",
        {
            "generator": "tools/make_conditioning_refs.py",
            "conventions": {
                "hidden": "A1111 conditioning of one scheduled text: [chunks * 77, width] raw little-endian float32",
                "calls": "per denoiser call (0-based CFGDenoiser.step, steps calls), the first schedule index holding the tensor reconstruct_cond_batch returns (equal texts in one batch give equal tensors)",
                "clip_skip": "A1111 CLIP_stop_at_last_layers",
                "settings": "emphasis Original, comma_padding_backtrack 20, no textual inversion",
                "final_layer_norm_bias": "the tiny-sd text encoder's text_model.final_layer_norm.bias, replaced by this vector",
            },
            "final_layer_norm_bias": bias_ref,
            "long_prompt_first_chunk_tokens": backtracked,
            "cases": cases,
        },
    )
    print(f"wrote {len(writer.files)} files to {OUT}")


if __name__ == "__main__":
    main()
