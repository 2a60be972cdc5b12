"""SDXL clip skip as A1111 reads it: A1111's own SDXL embedders around tiny-sdxl's encoders at Clip skip 2 and 3.

A1111's SDXL embedders (sd_hijack_clip.FrozenCLIPEmbedderForSDXLWithCustomWords, sd_hijack_open_clip.
FrozenOpenCLIPEmbedder2WithCustomWords), joined as tools/make_sdxl_conditioning_refs.py joins them (its loaders and
stubs), are run with opts.CLIP_stop_at_last_layers = 1, 2, 3 and opts.sdxl_clip_l_skip off (A1111's default; the
option is not written to the infotext) and on. What A1111's code does with them, checked here on every prompt:
  - off: clip skip changes nothing on either encoder (clip_l reads layer_idx -2 as sgm's config names it, clip_g its
    "penultimate" state): Clip skip 1, 2 and 3 give the same bytes;
  - on: clip_l reads hidden_states[-n] (no final layer norm), clip_g is untouched: Clip skip 2 is the same
    penultimate layer (same bytes), Clip skip 1 and 3 move clip_l alone (3 is recorded as `clip_l_skip_3`).
A1111's conditioning at Clip skip 2 (option off), the conditioning diffuse's --prompt-weighting a1111 must give
whatever --clip-skip, is byte for byte the Clip skip 1 conditioning tools/make_sdxl_conditioning_refs.py recorded for
the same prompt (checked here against its .bin files), so the manifest names that case instead of copying it; Clip skip
3 with the option on, which diffuse does not follow (its test checks that it differs), is written.

The committed references were made from a partial checkout holding only the four A1111 files
tools/make_sdxl_conditioning_refs.py names, written out as GitHub's stored versions read them: prompt_parser.py 0674fab,
sd_emphasis.py f8391b8, sd_hijack_clip.py 00e0938, sd_hijack_open_clip.py 01a40c6.

Writes test/fixtures/sdxl-conditioning/clip-skip/: refs.json and raw little-endian float32 .bin arrays.
Usage: /opt/diffuse-venv/bin/python tools/make_sdxl_clip_skip_refs.py --a1111 PATH
"""
from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

import numpy as np
import torch
from transformers import CLIPTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sdxl_fixture_models as models  # noqa: E402
from fixtures_io import RefWriter  # noqa: E402
from make_prompt_refs import OPTS  # noqa: E402
from make_sdxl_conditioning_refs import FIXTURE, a1111_embedders, load_a1111_sdxl  # noqa: E402

CONDITIONING = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "sdxl-conditioning"
OUT = CONDITIONING / "clip-skip"
MAX_MB = 0.04

PROMPTS = {"plain": "a photo of a cat", "emphasis": "a (red:1.3) apple on a table"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a1111", type=Path, required=True, help="stable-diffusion-webui checkout (modules/)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    tokenizer = CLIPTokenizer.from_pretrained(str(FIXTURE / "tokenizer"))
    tokenizer_2 = CLIPTokenizer.from_pretrained(str(FIXTURE / "tokenizer_2"))
    a1111 = load_a1111_sdxl(args.a1111, tokenizer_2)
    embed_l, embed_g = a1111_embedders(a1111, tokenizer, models.build_text_encoder(), models.build_text_encoder_2())

    @torch.no_grad()
    def conditioner(text: str, clip_skip: int, clip_l_skip: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """sgm's conditioner over A1111's embedders: crossattn (clip_l | clip_g) and clip_g's pooled text."""
        OPTS.CLIP_stop_at_last_layers = clip_skip
        OPTS.sdxl_clip_l_skip = clip_l_skip
        z_g, pooled = embed_g([text])
        return torch.cat([embed_l([text]), z_g], dim=-1)[0], pooled[0]

    recorded = {c["prompt"]: c for c in json.loads(gzip.decompress((CONDITIONING / "refs.json.gz").read_bytes()))["cases"]}

    def same_as_recorded(prompt: str, hidden: torch.Tensor, pooled: torch.Tensor) -> str:
        case = recorded[prompt]
        [text] = case["a1111"]
        for ref, value in ((text["hidden"], hidden), (text["pooled"], pooled)):
            if not np.array_equal(np.fromfile(CONDITIONING / ref["file"], dtype="<f4"), value.numpy().reshape(-1)):
                raise AssertionError(f"{case['name']}: A1111 at clip skip 2 differs from the recorded conditioning")
        return case["name"]

    writer = RefWriter(OUT)
    cases = []
    for name, prompt in PROMPTS.items():
        hidden, pooled = conditioner(prompt, 2, False)
        for n, on in [(1, False), (3, False), (2, True)]:
            h, p = conditioner(prompt, n, on)
            if not (torch.equal(h, hidden) and torch.equal(p, pooled)):
                raise AssertionError(f"{name}: A1111 at clip skip {n}, sdxl_clip_l_skip {on} differs from clip skip 2")
        moved, moved_pooled = conditioner(prompt, 3, True)
        width_l = embed_l.wrapped.transformer.config.hidden_size
        if torch.equal(moved[:, :width_l], hidden[:, :width_l]) or not torch.equal(moved[:, width_l:], hidden[:, width_l:]) or not torch.equal(moved_pooled, pooled):
            raise AssertionError(f"{name}: clip skip 3 with sdxl_clip_l_skip must move clip_l alone")
        cases.append({
            "name": name,
            "prompt": prompt,
            "a1111_as_case": same_as_recorded(prompt, hidden, pooled),
            "clip_l_skip_3": {"hidden": writer.array(f"{name}_clip_l_skip_3", moved)},
        })
        print(f"{name}: clip skip 1-3 alike with the option off; clip_l moves at 3 with it on")
    OPTS.CLIP_stop_at_last_layers, OPTS.sdxl_clip_l_skip = 1, False
    writer.manifest("refs.json", {
        "generator": "tools/make_sdxl_clip_skip_refs.py",
        "conventions": {
            "a1111_as_case": "A1111's conditioning at Clip skip 2, sdxl_clip_l_skip off, is this ../refs.json.gz case's a1111 text, "
                             "byte for byte; clip skip 1 and 3 with the option off, and 2 with it on, give the same bytes (checked by the generator)",
            "clip_l_skip_3": "Clip skip 3 with sdxl_clip_l_skip on: [77, 16 + 24], clip_l at hidden_states[-3], clip_g unchanged",
        },
        "cases": cases,
    })
    writer.finish(MAX_MB)


if __name__ == "__main__":
    main()
