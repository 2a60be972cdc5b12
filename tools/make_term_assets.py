"""The term lists img2txt ranks when --terms is not given (assets/interrogate-terms/).

They are pharmapsychotic/clip-interrogator's (MIT), the four A1111 downloads into models/interrogate/:
artists, flavors, mediums, movements (not negative.txt, which A1111 does not fetch). Taken from the PyPI wheel
(`pip download --no-deps --only-binary :all: clip-interrogator==0.6.0`; its sdist does not build), checked against
the wheel's pinned SHA-256, each list gzipped deterministically with its bytes untouched (the SHA-256 of the
decompressed file is the upstream file's: test/img2txt-terms.test.ts pins them), and the licence copied beside them.

Usage: /opt/diffuse-venv/bin/python tools/make_term_assets.py clip_interrogator-0.6.0-py3-none-any.whl
"""
from __future__ import annotations

import hashlib
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gzip_json import write_gzip_bytes  # noqa: E402

WHEEL_SHA256 = "cd7c6bf9db170f005b4179e943fc1658aa0f8eebcc75ab3428b0a992aaeabd1c"
LISTS = ["artists", "flavors", "mediums", "movements"]
OUT = Path(__file__).resolve().parent.parent / "assets" / "interrogate-terms"


def main() -> None:
    wheel = Path(sys.argv[1])
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise SystemExit(f"{wheel}: SHA-256 {digest}, expected clip-interrogator 0.6.0's {WHEEL_SHA256}")
    OUT.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as whl:
        (OUT / "LICENSE").write_bytes(whl.read("clip_interrogator-0.6.0.dist-info/LICENSE"))
        for name in LISTS:
            data = whl.read(f"clip_interrogator/data/{name}.txt")
            write_gzip_bytes(OUT / f"{name}.txt.gz", data)
            print(f"{name}.txt: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}, gz {(OUT / f'{name}.txt.gz').stat().st_size}")


if __name__ == "__main__":
    main()
