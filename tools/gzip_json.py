"""Deterministic gzip for large JSON references (mtime 0, no file name), so reruns stay byte-identical."""
import gzip
from pathlib import Path


def write_gzip_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(data)


def write_gzip_text(path: Path, text: str) -> None:
    write_gzip_bytes(path, text.encode("utf-8"))
