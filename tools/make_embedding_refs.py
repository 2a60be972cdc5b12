"""CLIP skip and textual-inversion references for the tiny text encoder, plus embedding files in every format.

Usage: /opt/diffuse-venv/bin/python tools/make_embedding_refs.py
Writes test/fixtures/embeddings/: refs.json (+ .bin arrays), good embedding files in each format the TypeScript
readers accept, and hostile files they must refuse. Deterministic: fixed seeds, single-threaded torch.

The text encoder is rebuilt from tools/fixtures_models.py (same seed as the ONNX fixture) rather than read back
from ONNX, so the references come from transformers' own CLIPTextModel.
"""
from __future__ import annotations

import io
import struct
import sys
import zipfile
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import CLIPTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fixtures_models as models  # noqa: E402
from fixtures_io import RefWriter  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
TOKENIZER_DIR = REPO_ROOT / "test" / "fixtures" / "tiny-sd" / "tokenizer"
OUT = REPO_ROOT / "test" / "fixtures" / "embeddings"

PROMPTS = ["a photo of a cat", "", "a red apple on a wooden table, highly detailed"]
# A1111 clip skip k: final_layer_norm(hidden_states[-k]); k = 1 is the plain last_hidden_state.
CLIP_SKIPS = [1, 2, 3]

EMBEDDING_SEED = 1234
EMBEDDING_VECTORS = 2
# A1111 names an embedding after its file; the prompt uses that name as the trigger.
TRIGGER = "tiny-emb"
EMBEDDING_PROMPT = f"a photo of {TRIGGER} cat"
# The pickle hostile files would create this file if anything executed them.
MARKER = "/tmp/diffuse-evil-pickle-marker"


def padded_ids(tokenizer: CLIPTokenizer, body: list[int]) -> list[int]:
    ids = [tokenizer.bos_token_id, *body, tokenizer.eos_token_id]
    return ids + [tokenizer.pad_token_id] * (tokenizer.model_max_length - len(ids))


def clip_skip_refs(writer: RefWriter, model, tokenizer: CLIPTokenizer) -> list[dict[str, object]]:
    cases = []
    for p, prompt in enumerate(PROMPTS):
        ids = tokenizer(prompt, padding="max_length", max_length=tokenizer.model_max_length, truncation=True).input_ids
        with torch.no_grad():
            out = model(torch.tensor([ids]), output_hidden_states=True)
            outputs = {}
            for k in CLIP_SKIPS:
                hidden = model.text_model.final_layer_norm(out.hidden_states[-k])
                if k == 1 and not torch.equal(hidden, out.last_hidden_state):
                    raise AssertionError("clip skip 1 must be the plain last_hidden_state")
                outputs[str(k)] = writer.array(f"clip_skip_p{p}_k{k}", hidden[0])
        cases.append({"prompt": prompt, "ids": ids, "hidden": outputs})
    return cases


def a1111_replace(body: list[int], trigger_ids: list[int], new_ids: list[int]) -> list[int]:
    """A1111: the embedding's name, tokenized, is matched as a whole token run and replaced by its vectors."""
    out: list[int] = []
    i = 0
    while i < len(body):
        if body[i : i + len(trigger_ids)] == trigger_ids:
            out += new_ids
            i += len(trigger_ids)
        else:
            out.append(body[i])
            i += 1
    if out == body:
        raise AssertionError("trigger not found in the embedding prompt")
    return out


def embedding_refs(writer: RefWriter, model, tokenizer: CLIPTokenizer, vectors: torch.Tensor) -> dict[str, object]:
    vocab = model.get_input_embeddings().weight.shape[0]
    model.resize_token_embeddings(vocab + EMBEDDING_VECTORS)
    new_ids = list(range(vocab, vocab + EMBEDDING_VECTORS))
    with torch.no_grad():
        model.get_input_embeddings().weight[vocab:] = vectors
    trigger_ids = tokenizer(TRIGGER, add_special_tokens=False).input_ids
    body = tokenizer(EMBEDDING_PROMPT, add_special_tokens=False).input_ids
    ids = padded_ids(tokenizer, a1111_replace(body, trigger_ids, new_ids))
    with torch.no_grad():
        hidden = model(torch.tensor([ids]), output_hidden_states=True)
        skip2 = model.text_model.final_layer_norm(hidden.hidden_states[-2])
    return {
        "trigger": TRIGGER,
        "prompt": EMBEDDING_PROMPT,
        "trigger_ids": trigger_ids,
        "new_ids": new_ids,
        "ids": ids,
        "vectors": writer.array("embedding_vectors", vectors),
        "last_hidden_state": writer.array("embedding_last_hidden_state", hidden.last_hidden_state[0]),
        "clip_skip_2": writer.array("embedding_clip_skip_2", skip2[0]),
    }


def torch_zip(name: str, pickle_bytes: bytes) -> bytes:
    """A torch.save-style zip around hand-written pickle bytes (never unpickled here)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        # A fixed timestamp keeps reruns byte-identical.
        for entry, data in ((f"{name}/data.pkl", pickle_bytes), (f"{name}/byteorder", b"little"), (f"{name}/version", b"3\n")):
            z.writestr(zipfile.ZipInfo(entry, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def short_unicode(text: str) -> bytes:
    data = text.encode()
    return b"\x8c" + bytes([len(data)]) + data


def binunicode(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def hostile_pickles() -> dict[str, bytes]:
    # Protocol 2: GLOBAL 'os system', ('touch MARKER',), REDUCE, inside A1111's dict shape.
    os_system = (
        b"\x80\x02}" + binunicode("string_to_param") + b"}" + binunicode("*")
        + b"cos\nsystem\n" + binunicode(f"touch {MARKER}") + b"\x85R" + b"ss."
    )
    # Protocol 4: STACK_GLOBAL builtins.eval on a code string.
    builtins_eval = (
        b"\x80\x04" + short_unicode("builtins") + short_unicode("eval") + b"\x93"
        + binunicode(f"open({MARKER!r}, 'w')") + b"\x85R."
    )
    # A callable smuggled in as a storage type of the tensor rebuild.
    storage_type = (
        b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(("
        + binunicode("storage") + b"cposix\nsystem\n" + binunicode("0") + binunicode("cpu") + b"K\x02tQ"
        + b"K\x00K\x02\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtR."
    )
    return {
        "evil-os-system.pt": torch_zip("evil-os-system", os_system),
        "evil-builtins-eval.bin": torch_zip("evil-builtins-eval", builtins_eval),
        "evil-storage-type.pt": torch_zip("evil-storage-type", storage_type),
    }


def write_embedding_files(out: Path, vectors: torch.Tensor) -> dict[str, object]:
    files: dict[str, object] = {}

    def claim(name: str, kind: str, **extra: object) -> Path:
        files[name] = {"kind": kind, **extra}
        return out / name

    # Good files: the same vectors in every format (fp16/bf16 hold the rounded copies, listed in `expect`).
    save_file({"emb_params": vectors.clone()}, claim(f"{TRIGGER}.safetensors", "a1111-safetensors", expect="float32"))
    a1111_pt = {
        "string_to_token": {"*": 265},
        "string_to_param": {"*": vectors.clone().requires_grad_(True)},
        "name": TRIGGER,
        "step": 0,
        "sd_checkpoint": None,
        "sd_checkpoint_name": None,
    }
    torch.save(a1111_pt, claim(f"{TRIGGER}.pt", "a1111-pt", expect="float32"))
    # Embeddings saved by torch 1.11 hold an nn.ParameterDict (A1111 reads its _parameters).
    param_dict = torch.nn.ParameterDict({"*": torch.nn.Parameter(vectors.clone())})
    torch.save({"string_to_param": param_dict}, claim("param-dict.pt", "a1111-pt-parameterdict", expect="float32"))
    torch.save({"<tiny-emb>": vectors.clone()}, claim("learned_embeds.bin", "diffusers-bin", expect="float32"))
    save_file({"<tiny-emb>": vectors.clone()}, claim("learned_embeds.safetensors", "diffusers-safetensors", expect="float32"))
    # diffusers' older scripts saved one vector as shape [dim].
    torch.save({"<one>": vectors[0].clone()}, claim("one-vector.bin", "diffusers-bin-1d", expect="float32-row0"))
    save_file({"emb_params": vectors.half()}, claim("half.safetensors", "a1111-safetensors", expect="float16"))
    save_file({"emb_params": vectors.bfloat16()}, claim("bf16.safetensors", "a1111-safetensors", expect="bfloat16"))
    # A transposed view: the rebuild must honour strides, not assume contiguous storage.
    torch.save({"string_to_param": {"*": vectors.t().contiguous().t()}}, claim("strided.pt", "a1111-pt", expect="float32"))
    torch.save({"string_to_param": {"*": vectors.half()}}, claim("half.pt", "a1111-pt", expect="float16"))

    # Hostile or broken files.
    good = (out / f"{TRIGGER}.safetensors").read_bytes()
    claim("truncated.safetensors", "hostile").write_bytes(good[: len(good) - 40])
    claim("huge-header.safetensors", "hostile").write_bytes(struct.pack("<Q", 10 * 1024**3) + b"{}")
    save_file({"emb_params": torch.zeros(2, 48)}, claim("wrong-width.safetensors", "wrong-width"))
    header = b'{"emb_params":{"dtype":"F32","shape":[2,32],"data_offsets":[0,64]}}'
    claim("bad-offsets.safetensors", "hostile").write_bytes(struct.pack("<Q", len(header)) + header + bytes(256))
    pt = (out / f"{TRIGGER}.pt").read_bytes()
    claim("truncated.pt", "hostile").write_bytes(pt[: len(pt) // 2])
    for name, data in hostile_pickles().items():
        claim(name, "hostile-pickle").write_bytes(data)
    return files


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    tokenizer = CLIPTokenizer.from_pretrained(str(TOKENIZER_DIR))
    model = models.build_text_encoder()
    writer = RefWriter(OUT)
    clip_skip = clip_skip_refs(writer, model, tokenizer)
    generator = torch.Generator().manual_seed(EMBEDDING_SEED)
    vectors = torch.randn(EMBEDDING_VECTORS, model.config.hidden_size, generator=generator)
    embedding = embedding_refs(writer, model, tokenizer, vectors)
    writer.array("embedding_vectors_f16", vectors.half().float())
    writer.array("embedding_vectors_bf16", vectors.bfloat16().float())
    files = write_embedding_files(OUT, vectors)
    writer.manifest(
        "refs.json",
        {
            "generator": "tools/make_embedding_refs.py",
            "conventions": {
                "clip_skip": "A1111 numbering: k -> final_layer_norm(hidden_states[-k]) (diffusers clip_skip = k - 1)",
                "bin": "raw little-endian float32, C order, shape in the entry",
                "embedding": "vectors appended as ids vocab.. (resize_token_embeddings); trigger replaced as a token run",
                "marker": "file the hostile pickles would create if executed",
            },
            "marker": MARKER,
            "clip_skip": clip_skip,
            "embedding": embedding,
            "files": files,
        },
    )
    print(f"wrote {len(writer.files) + len(files)} files to {OUT}")


if __name__ == "__main__":
    main()
