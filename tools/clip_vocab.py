"""Convert openai's CLIP BPE list into the Hugging Face CLIPTokenizer files SD 1.x ships.

The output (vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json) matches
openai/clip-vit-large-patch14 as used by Stable Diffusion 1.5, so real prompts get real token ids.

Usage: /opt/diffuse-venv/bin/python tools/clip_vocab.py [OUT_DIR]
       (default OUT_DIR: test/fixtures/tiny-sd/tokenizer)
"""
from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BPE_GZ = REPO_ROOT.parent / "shared" / "data" / "clip" / "bpe_simple_vocab_16e6.txt.gz"
DEFAULT_OUT = REPO_ROOT / "test" / "fixtures" / "tiny-sd" / "tokenizer"

VOCAB_SIZE = 49408
BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
# CLIP keeps 49152 - 256 - 2 merges: the vocab is 256 bytes x2 (with and without </w>) + merges + 2 specials.
NUM_MERGES = 49152 - 256 - 2

# Known SD 1.5 ids, used to fail loudly if the conversion drifts.
CHECK_PROMPT = "a photo of an astronaut riding a horse on mars"
CHECK_IDS = [49406, 320, 1125, 539, 550, 18376, 6765, 320, 4558, 525, 7496, 49407]


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP reversible byte -> printable unicode char table (in CLIP's id order)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codepoints = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codepoints.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codepoints)))


def read_merges(path: Path) -> list[tuple[str, str]]:
    lines = gzip.open(path, "rt", encoding="utf-8").read().split("\n")
    # Line 0 is openai's header; the next NUM_MERGES lines are the merges CLIP actually uses.
    merges = [tuple(line.split()) for line in lines[1 : 1 + NUM_MERGES]]
    for m in merges:
        if len(m) != 2:
            raise ValueError(f"malformed merge line: {m!r}")
    return merges  # type: ignore[return-value]


def build_vocab(merges: list[tuple[str, str]]) -> dict[str, int]:
    byte_chars = list(bytes_to_unicode().values())
    tokens = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges] + [BOS, EOS]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    if len(vocab) != VOCAB_SIZE or len(tokens) != VOCAB_SIZE:
        raise ValueError(f"vocab has {len(vocab)} unique / {len(tokens)} tokens, expected {VOCAB_SIZE}")
    return vocab


def special_token(content: str) -> dict[str, object]:
    return {"content": content, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}


def tokenizer_config() -> dict[str, object]:
    return {
        "add_prefix_space": False,
        "bos_token": {"__type": "AddedToken", **special_token(BOS)},
        "do_lower_case": True,
        "eos_token": {"__type": "AddedToken", **special_token(EOS)},
        "errors": "replace",
        "model_max_length": 77,
        "name_or_path": "openai/clip-vit-large-patch14",
        "pad_token": EOS,
        "special_tokens_map_file": "./special_tokens_map.json",
        "tokenizer_class": "CLIPTokenizer",
        "unk_token": {"__type": "AddedToken", **special_token(EOS)},
    }


def special_tokens_map() -> dict[str, object]:
    return {
        "bos_token": special_token(BOS),
        "eos_token": special_token(EOS),
        "pad_token": EOS,
        "unk_token": special_token(EOS),
    }


def write_tokenizer(out_dir: Path) -> None:
    merges = read_merges(BPE_GZ)
    vocab = build_vocab(merges)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False) + "\n", encoding="utf-8")
    merges_text = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)
    (out_dir / "merges.txt").write_text(merges_text, encoding="utf-8")
    (out_dir / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(), indent=2) + "\n")
    (out_dir / "special_tokens_map.json").write_text(json.dumps(special_tokens_map(), indent=2) + "\n")


def verify_tokenizer(out_dir: Path) -> None:
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(str(out_dir))
    ids = tok(CHECK_PROMPT).input_ids
    if ids != CHECK_IDS:
        raise AssertionError(f"tokenizer ids {ids} != known SD ids {CHECK_IDS}")
    if len(tok) != VOCAB_SIZE or tok.model_max_length != 77:
        raise AssertionError(f"tokenizer size {len(tok)} / max length {tok.model_max_length} unexpected")


def main() -> None:
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT
    write_tokenizer(out_dir)
    verify_tokenizer(out_dir)
    print(f"wrote CLIP tokenizer ({VOCAB_SIZE} tokens) to {out_dir}")


if __name__ == "__main__":
    main()
