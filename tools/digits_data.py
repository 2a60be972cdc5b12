"""scikit-learn's handwritten digits as the tiny-digits model and its classifier see them, and the model's prompts.

load_digits ships inside scikit-learn (1797 8x8 images, ink 0..16, no download). Each is drawn dark on white and
upsampled to 32x32 (torch bilinear, as the VAE is trained on), then rounded to 8 bits as a saved PNG would be.
One fixed permutation splits it: the first HELD_OUT images are never trained on (classifier accuracy is stated on
them), the rest train the VAE, the UNet and the classifier.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import clip_vocab

REPO_ROOT = Path(__file__).resolve().parent.parent
CLIP_MERGES = REPO_ROOT / "assets" / "clip" / "merges.txt.gz"

SIZE = 32
HELD_OUT = 360
SPLIT_SEED = 0
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def prompt(digit: int) -> str:
    return f"a handwritten digit {WORDS[digit]}"


def load_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images, train labels, held-out images, held-out labels); images uint8 [N, 32, 32] grey."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    ink = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    grey = F.interpolate(1.0 - ink, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    images = (grey[:, 0] * 255).round().clamp(0, 255).to(torch.uint8).numpy()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(images))
    held, train = order[:HELD_OUT], order[HELD_OUT:]
    labels = digits.target.astype(np.int64)
    return images[train], labels[train], images[held], labels[held]


def to_model_range(images: np.ndarray) -> torch.Tensor:
    """uint8 grey [N, 32, 32] -> float RGB [N, 3, 32, 32] in [-1, 1], the VAE's pixel range."""
    x = torch.tensor(images, dtype=torch.float32)[:, None] / 127.5 - 1.0
    return x.expand(-1, 3, -1, -1).contiguous()


def write_tokenizer(out_dir: Path) -> None:
    """A CLIP tokenizer cut down to the merges the prompts use (and the 512 byte tokens, so any prompt still
    tokenizes): the same ids-per-word as CLIP would split them, in a vocabulary of a few hundred tokens instead of
    49408, so the text encoder's embedding table is KB, not MB. Dropping merges a word never applies cannot change
    how it is split: BPE applies the lowest-ranked present pair, and every applied pair is kept in rank order."""
    from transformers import CLIPTokenizer

    lines = gzip.open(CLIP_MERGES, "rt", encoding="utf-8").read().split("\n")
    merges = [tuple(line.split()) for line in lines[1 : 1 + clip_vocab.NUM_MERGES]]
    full_dir = out_dir.parent / (out_dir.name + "-full")
    _write(full_dir, merges)
    full = CLIPTokenizer.from_pretrained(str(full_dir))
    used: set[tuple[str, str]] = set()
    for word in ("a", "handwritten", "digit", *WORDS):
        used |= _applied_merges(full, word)
    kept = [m for m in merges if m in used]
    _write(out_dir, kept)
    small = CLIPTokenizer.from_pretrained(str(out_dir))
    for d in range(10):
        want = full.convert_ids_to_tokens(full(prompt(d)).input_ids)
        got = small.convert_ids_to_tokens(small(prompt(d)).input_ids)
        if want != got:
            raise AssertionError(f"cut tokenizer splits {prompt(d)!r} as {got}, CLIP as {want}")


def _applied_merges(tok, word: str) -> set[tuple[str, str]]:
    """Replays CLIP's BPE on one word and records each merge it applies."""
    parts = [*word[:-1], word[-1] + "</w>"]
    applied: set[tuple[str, str]] = set()
    while len(parts) > 1:
        pairs = [(parts[i], parts[i + 1]) for i in range(len(parts) - 1)]
        ranked = [p for p in pairs if p in tok.bpe_ranks]
        if not ranked:
            break
        best = min(ranked, key=lambda p: tok.bpe_ranks[p])
        applied.add(best)
        merged, i = [], 0
        while i < len(parts):
            if i < len(parts) - 1 and (parts[i], parts[i + 1]) == best:
                merged.append(parts[i] + parts[i + 1])
                i += 2
            else:
                merged.append(parts[i])
                i += 1
        parts = merged
    if tok.bpe(word) != " ".join(parts):
        raise AssertionError(f"BPE replay of {word!r} gives {parts}, CLIPTokenizer {tok.bpe(word)!r}")
    return applied


def _write(out_dir: Path, merges: list) -> None:
    byte_chars = list(clip_vocab.bytes_to_unicode().values())
    tokens = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges] + [clip_vocab.BOS, clip_vocab.EOS]
    vocab = {t: i for i, t in enumerate(tokens)}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False) + "\n", encoding="utf-8")
    (out_dir / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    config = dict(clip_vocab.tokenizer_config(), name_or_path="tiny-digits")
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out_dir / "special_tokens_map.json").write_text(json.dumps(clip_vocab.special_tokens_map(), indent=2) + "\n")
