"""The CLIP BPE merges diffuse ships for the models it converts (assets/clip/merges.txt.gz).

A converted checkpoint needs the tokenizer files diffusers folders carry; every SD 1.x/2.x model
uses CLIP's vocabulary. Only merges.txt is shipped (gzipped deterministically): vocab.json follows
from it (src/graphs/clip-tokenizer-files.ts derives it; test/graphs-tokenizer.test.ts checks it
against transformers' files in test/fixtures/tiny-sd/tokenizer).

Usage: /opt/diffuse-venv/bin/python tools/make_clip_asset.py [bpe_simple_vocab_16e6.txt.gz]
       (default: ../shared/data/clip/ beside the checkout, as tools/clip_vocab.py)
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clip_vocab import BPE_GZ, read_merges  # noqa: E402
from gzip_json import write_gzip_text  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "assets" / "clip" / "merges.txt.gz"


def main() -> None:
    merges = read_merges(Path(sys.argv[1]) if len(sys.argv) > 1 else BPE_GZ)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    write_gzip_text(OUT, "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    print(f"wrote {OUT} ({len(merges)} merges, {OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
