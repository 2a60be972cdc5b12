"""References for the A1111 prompt language (src/text/prompt-*.ts), produced by AUTOMATIC1111's OWN code.

Needs a stable-diffusion-webui checkout (never copied into this repo): its modules/prompt_parser.py,
modules/sd_emphasis.py and modules/sd_hijack_clip.py are loaded by file path; the modules they import
(devices, sd_hijack, shared.opts) are replaced by small stubs, and the textual-inversion database finds no
embedding. Tokens come from transformers' slow CLIPTokenizer on test/fixtures/tiny-sd/tokenizer (the
real CLIP vocabulary), as A1111's FrozenCLIPEmbedderWithCustomWords.tokenize does.

Writes test/fixtures/prompt/:
  refs.json.gz  schedules (get_learned_conditioning_prompt_schedules) for several step counts,
                parse_prompt_attention outputs, tokenize_line chunks for several settings; a case whose A1111
                call raises records {"error": <exception class>}
  forward.json  + forward.bin: A1111's forward() on batches of texts with the text encoder replaced by
                recorded random float32 hidden states (width 8), per emphasis mode, plus ComfyUI's
                weighting on the same states (the formula of comfy/sd1_clip.py encode_token_weights,
                transcribed below since ComfyUI is not importable here)

lark: the prompt grammar is ambiguous where loose brackets meet prompt editing ("[a:1]:2]"). lark 1.1.2
(A1111's pin) resolves that with unordered sets, so A1111's own result there depends on PYTHONHASHSEED;
this script runs with lark 1.2 (tools/requirements.txt), whose ordered forest gives one of those
outcomes deterministically. The TypeScript parser flags such prompts `ambiguous` (src/text/prompt-schedule-parser.ts).
Random prompts (6000, half mutated well-formed ones) cover the grammar's corners; everything is seeded.

Usage: /opt/diffuse-venv/bin/python tools/make_prompt_refs.py --a1111 /path/to/stable-diffusion-webui
"""
from __future__ import annotations

import argparse
import importlib.util
import json

from gzip_json import write_gzip_text
import random
import sys
import types
from pathlib import Path

import numpy as np
import torch
from transformers import CLIPTokenizer

REPO_ROOT = Path(__file__).resolve().parent.parent
TOKENIZER_DIR = REPO_ROOT / "test" / "fixtures" / "tiny-sd" / "tokenizer"
OUT_DIR = REPO_ROOT / "test" / "fixtures" / "prompt"
SCHEDULE_STEPS = (1, 4, 10, 20, 37)
FUZZ_STEPS = 10
HIDDEN_WIDTH = 8
SEED = 1234

OPTS = types.SimpleNamespace(
    emphasis="Original",
    comma_padding_backtrack=20,
    use_old_emphasis_implementation=False,
    textual_inversion_add_hashes_to_infotext=False,
    CLIP_stop_at_last_layers=1,
)


def load_a1111(checkout: Path, extra: tuple[str, ...] = ()) -> types.SimpleNamespace:
    """Imports the three A1111 modules (and `extra` ones, after them) by path under a stub `modules` package."""
    package = types.ModuleType("modules")
    package.__path__ = []
    sys.modules["modules"] = package
    stubs = {
        "devices": types.SimpleNamespace(device=torch.device("cpu"), torch_npu_set_device=lambda: None),
        "sd_hijack": types.SimpleNamespace(StableDiffusionModelHijack=object),
        "shared": types.SimpleNamespace(opts=OPTS),
    }
    for name, stub in stubs.items():
        module = types.ModuleType(f"modules.{name}")
        module.__dict__.update(vars(stub))
        sys.modules[f"modules.{name}"] = module
        setattr(package, name, module)
    loaded = {}
    for name in ("prompt_parser", "sd_emphasis", "sd_hijack_clip", *extra):
        spec = importlib.util.spec_from_file_location(f"modules.{name}", checkout / "modules" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[f"modules.{name}"] = module
        setattr(package, name, module)
        spec.loader.exec_module(module)
        loaded[name] = module
    return types.SimpleNamespace(**loaded)


def outcome(fn, *args):
    try:
        return {"result": fn(*args)}
    except Exception as exc:  # A1111 lets these escape: the generation fails
        return {"error": type(exc).__name__}


# Prompts that exercise the grammar and the emphasis parser beyond the docstrings.
OWN_PROMPTS = [
    "", " ", "a", "a dog", "a  dog ", "\t tabs\tand\nnewlines\n",
    "[a:b:3]", "[a:b:0.5]", "[a:b:.25]", "[a:b:5.]", "[a:b:1.5]", "[a:b:1]", "[a:b:0]", "[a:b:-1]", "[a:b:-0.5]",
    "[a:b:+2]", "[a:b:1e1]", "[a:b:1e-1]", "[a:b:2E0]", "[a:b:1.5e1]", "[a:b:1e999]", "[a:b:1.0e999]", "[a:b:1e]",
    "[a:b:1.5.3]", "[a:b: 3 ]", "[a:b:\t3\n]", "[a:b:3 ]", "[a:b:3x]", "[a:b:x3]", "[a:b:100]",
    "[a:3]", "[:3]", "[::3]", "[a::3]", "[:a:3]", "[a:b:c:3]", "[a:b]", "[a]", "[[a]]", "[]", "[:]",
    "[a|b]", "[a|b|c]", "[a||c]", "[|]", "[a|]", "[|a]", "[a|[b|c]]", "[[a|b]|c]", "[a|b:3]", "a|b", "(a|b)",
    "[a|(b:1.2)|[c:d:2]]", "[a:[b|c]:4]", "[[a|b]:c:0.5]",
    "a [b:[c:d:2]:6] e", "[[a:b:2]:[c:d:4]:6]", "[a:[b:[c:[d:e:8]:6]:4]:2]",
    "[a:1]:2]", "[[a:1]", "[a:[b:1]", "[x[a:1]:2]", "[a:b:1]:2]", "[[a:b:1]:c:2]", "[a:[b:c:1]]", "[a:b:[c:1]]",
    "([a:1]:2)", "([a:1])", "[(a:1]:2)", "(a:[b:1])", "[a:(b:1)]", "[a:(b:1):2]", "((a:[b:c:2]))",
    "\\[a:b:2\\]", "[a\\:b:2]", "\\(a:1.2\\)", "[a\\]:2]", "a\\", "a\\\\", "\\\\[a:2]", "a\\\nb", "\\|", "[a\\|b:2]",
    "(word)", "((word))", "(((word)))", "[word]", "[[word]]", "(word:1.3)", "(word: 1.3 )", "(word:0)",
    "(word:-1)", "(word:-0.5)", "(word:+2)", "(word:.5)", "(word:5.)", "(word:1e-1)", "(word:1.2.3)", "(word:.)",
    "(word:-)", "(word:1.5", "word:1.5)", "(a:1.2)(b:1.2)", "((a:1.2):1.2)", "([a])", "[(a)]", "((a)", "(a))",
    "[[a]", "[a]]", "]a[", ")a(", "a:b", "a::b", "(a:b:1.2)", "(a:1.2:1.3)", "(\\(a\\):1.5)",
    "BREAK", "a BREAK b", "BREAK a", "a BREAK", "a BREAK BREAK b", "aBREAK b", "a BREAKb", "a_BREAK b",
    "a break b", "a\nBREAK\nb", "(a BREAK b)", "(a BREAK b:-1)", "BREAK(x:-1)", "[a BREAK b]", "(BREAK)",
    "a BREAK(b)", "éBREAK b", "a BREAK2 b", "a 1BREAK b", "a .BREAK. b", "a\u3000BREAK\u3000b", "a\x1cBREAK b",
    "(a:\u0661.\u0665)", "(a:\uff11)", "(a:\x1c1.5\x1c)", "(a:1.5\ufeff)",
    "日本語 (猫:1.2) [犬]", "café (naïve:0.9)", "emoji 🐱 (🐶:1.1)", "(ｆｕｌｌ:1.1)",
    "a, b, c, (d:1.3), [e], f BREAK g, h",
    "fantasy landscape with a [mountain:lake:0.25] and [an oak:a christmas tree:0.75][ in foreground::0.6]"
    "[ in background:0.25] [shoddy:masterful:0.5]",
    "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
]

FUZZ_ALPHABET = ["[", "]", "(", ")", ":", "|", "a", "b", " ", "1", "0.5", ".", "\\", "-", "e", "2", "BREAK", ","]


def fuzz_prompts(rng: random.Random, count: int) -> list[str]:
    return ["".join(rng.choice(FUZZ_ALPHABET) for _ in range(rng.randint(1, 12))) for _ in range(count)]


def structured_prompt(rng: random.Random, depth: int = 0) -> str:
    """A random well-formed-ish prompt (groups nested up to 3 deep) for the grammar's ambiguous corners."""
    def atom() -> str:
        return rng.choice(["a", "b", " c", "d ", "", " ", "1", "x y"])
    def group() -> str:
        if depth >= 3:
            return atom()
        inner = lambda: structured_prompt(rng, depth + 1)
        when = rng.choice(["1", "2", "0.5", " 3 ", ".3", "-1", "1e0", "x"])
        return rng.choice([
            f"[{inner()}:{inner()}:{when}]", f"[{inner()}:{when}]", f"[{inner()}|{inner()}]",
            f"[{inner()}|{inner()}|{inner()}]", f"({inner()})", f"({inner()}:1.2)", f"[{inner()}]",
        ])
    return "".join(rng.choice([atom, group, group])() for _ in range(rng.randint(1, 3)))


def mutate(rng: random.Random, prompt: str) -> str:
    """Deletes, duplicates or inserts one or two characters: unbalanced brackets, stray colons and bars."""
    chars = list(prompt)
    for _ in range(rng.randint(0, 2)):
        position = rng.randint(0, len(chars))
        action = rng.choice(["delete", "insert", "duplicate"])
        if action == "insert" or not chars:
            chars.insert(position, rng.choice("[]():|\\"))
        elif action == "delete" and position < len(chars):
            del chars[position]
        elif position < len(chars):
            chars.insert(position, chars[position])
    return "".join(chars)


def make_schedules(a1111, prompts, fuzz) -> list[dict]:
    cases = []
    g = a1111.prompt_parser.get_learned_conditioning_prompt_schedules
    for prompt in prompts:
        for steps in SCHEDULE_STEPS:
            cases.append({"prompt": prompt, "steps": steps, **outcome(lambda: g([prompt], steps)[0])})
    for prompt in fuzz:
        cases.append({"prompt": prompt, "steps": FUZZ_STEPS, **outcome(lambda: g([prompt], FUZZ_STEPS)[0])})
    return cases


def make_attention(a1111, prompts) -> list[dict]:
    parse = a1111.prompt_parser.parse_prompt_attention
    return [{"prompt": p, **outcome(parse, p)} for p in prompts]


def make_embedder(a1111, tokenizer):
    hijack = types.SimpleNamespace(
        embedding_db=types.SimpleNamespace(find_embedding_at_position=lambda tokens, position: (None, None)),
        fixes=None,
        extra_generation_params={},
    )
    wrapped = types.SimpleNamespace(tokenizer=tokenizer)
    return a1111.sd_hijack_clip.FrozenCLIPEmbedderWithCustomWords(wrapped, hijack)


def long_prompts(rng: random.Random) -> list[str]:
    words = ["cat", "dog", "a", "very", "beautiful", "landscape", "photograph", "of", "the", "old", "city", "at", "night"]
    out = []
    for n, comma_every in [(80, 0), (90, 7), (150, 5), (200, 3), (70, 19), (120, 1)]:
        parts = []
        for i in range(n):
            parts.append(rng.choice(words))
            if comma_every and i % comma_every == comma_every - 1:
                parts.append(",")
        out.append(" ".join(parts))
    out.append(", ".join(["masterpiece"] * 60))
    out.append("(" + " ".join(["red"] * 80) + ":1.2), " + " ".join(["blue"] * 20))
    out.append(" ".join(["x"] * 74) + " , y z")
    out.append(" ".join(["x"] * 75) + " , y z")
    out.append(" ".join(["x"] * 55) + " , " + " ".join(["y"] * 19) + " z w")
    out.append(" ".join(["x"] * 54) + " , " + " ".join(["y"] * 20) + " z w")
    out.append(" ".join(["x"] * 75) + " BREAK y")
    out.append(" ".join(["x"] * 74) + " BREAK y")
    out.append("BREAK BREAK a")
    return out


CHUNK_SETTINGS = [
    {"emphasis": "Original", "comma_padding_backtrack": 20},
    {"emphasis": "Original", "comma_padding_backtrack": 0},
    {"emphasis": "Original", "comma_padding_backtrack": 5},
    {"emphasis": "None", "comma_padding_backtrack": 20},
]


def make_chunks(a1111, tokenizer, prompts) -> list[dict]:
    embedder = make_embedder(a1111, tokenizer)
    cases = []
    for setting in CHUNK_SETTINGS:
        vars(OPTS).update(setting)
        for prompt in prompts:
            def run():
                chunks, token_count = embedder.tokenize_line(prompt)
                return {"token_count": token_count, "chunks": [{"tokens": c.tokens, "multipliers": c.multipliers} for c in chunks]}
            cases.append({"prompt": prompt, **setting, **outcome(run)})
    vars(OPTS).update(CHUNK_SETTINGS[0])
    return cases


FORWARD_BATCHES = [
    ["a (cat:1.3) on a [mat]"],
    ["plain text only"],
    ["a ", "a b"],  # the schedule of "a [b:3]"
    ["red (dress:1.4), " + " ".join(["long"] * 80), "blue [dress], short"],
    ["(x:-1) BREAK (y:2)", ""],
]
FORWARD_MODES = ["Original", "No norm", "Ignore", "None"]


def comfy_weighting(z: torch.Tensor, z_empty: torch.Tensor, multipliers: list[list[float]]) -> torch.Tensor:
    """comfy/sd1_clip.py ClipTokenWeightEncoder.encode_token_weights' weighting, per 77-token section."""
    out = z.clone()
    for j, weight in enumerate(multipliers):
        if weight != 1.0:
            out[j] = (out[j] - z_empty[j]) * weight + z_empty[j]
    return out


def make_forward(a1111, tokenizer):
    embedder = make_embedder(a1111, tokenizer)
    generator = torch.Generator().manual_seed(SEED)
    floats: list[np.ndarray] = []
    offset = 0

    def put(tensor: torch.Tensor) -> dict:
        nonlocal offset
        array = tensor.detach().to(torch.float32).numpy().ravel()
        floats.append(array)
        ref = {"offset": offset, "shape": list(tensor.shape)}
        offset += array.size
        return ref

    cases = []
    for pad in ("eos", "zero"):
        embedder.id_pad = embedder.id_end if pad == "eos" else 0
        for mode in FORWARD_MODES:
            OPTS.emphasis = mode
            for texts in FORWARD_BATCHES:
                calls = []

                def encode(tokens):
                    # Offset like real CLIP states, whose mean is far from 0: a zero-mean batch would make
                    # A1111's mean ratio hinge on float32 summation order.
                    z = torch.randn((tokens.shape[0], tokens.shape[1], HIDDEN_WIDTH), generator=generator, dtype=torch.float32) + 0.5
                    calls.append({"input_ids": tokens.tolist(), "hidden": put(z)})
                    return z

                embedder.encode_with_transformers = encode
                out = embedder.forward(texts)
                cases.append({"texts": texts, "emphasis": mode, "pad": pad, "encoder_calls": calls, "output": put(out)})
    embedder.id_pad = embedder.id_end
    OPTS.emphasis = "Original"

    comfy = []
    for prompt in ["a (cat:1.3) on a [mat]", "(x:-1) BREAK (y:2) " + " ".join(["z"] * 80)]:
        chunks, _ = embedder.tokenize_line(prompt)
        z = torch.randn((len(chunks), 77, HIDDEN_WIDTH), generator=generator, dtype=torch.float32)
        z_empty = torch.randn((77, HIDDEN_WIDTH), generator=generator, dtype=torch.float32)
        out = torch.cat([comfy_weighting(z[k], z_empty, c.multipliers) for k, c in enumerate(chunks)])
        comfy.append({"prompt": prompt, "multipliers": [c.multipliers for c in chunks], "hidden": put(z), "empty_hidden": put(z_empty), "output": put(out)})
    return {"width": HIDDEN_WIDTH, "forward": cases, "comfy": comfy}, np.concatenate(floats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a1111", type=Path, required=True, help="stable-diffusion-webui checkout")
    args = parser.parse_args()
    a1111 = load_a1111(args.a1111)
    import lark

    rng = random.Random(SEED)
    tokenizer = CLIPTokenizer.from_pretrained(TOKENIZER_DIR)
    doc_prompts = [
        "test", "a [b:3]", "a [b: 3]", "a [[[b]]:2]", "[(a:2):3]", "a [b : c : 1] d", "a[b:[c:d:2]:1]e",
        "a [unbalanced", "a [b:.5] c", "a [{b|d{:.5] c", "((a][:b:c [d:3]", "[a|(b:1.1)]", "[fe|]male", "[fe|||]male",
        "normal text", "an (important) word", "(unbalanced", "\\(literal\\]", "(unnecessary)(parens)",
        "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
    ]
    prompts = doc_prompts + OWN_PROMPTS
    fuzz = fuzz_prompts(rng, 3000) + [mutate(rng, structured_prompt(rng)) for _ in range(3000)]
    refs = {
        "generator": "tools/make_prompt_refs.py",
        "lark": lark.__version__,
        "schedules": make_schedules(a1111, prompts, fuzz),
        "attention": make_attention(a1111, prompts + fuzz),
        "chunks": make_chunks(a1111, tokenizer, prompts + long_prompts(rng)),
    }
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    write_gzip_text(OUT_DIR / "refs.json.gz", json.dumps(refs, ensure_ascii=False, separators=(",", ":")) + "\n")
    forward, floats = make_forward(a1111, tokenizer)
    (OUT_DIR / "forward.json").write_text(json.dumps(forward, separators=(",", ":")) + "\n", encoding="utf-8")
    floats.astype("<f4").tofile(OUT_DIR / "forward.bin")
    print(f"{len(refs['schedules'])} schedules, {len(refs['attention'])} attention, {len(refs['chunks'])} chunk cases, "
          f"{len(forward['forward'])} forward cases, {floats.size * 4} bytes of hidden states")


if __name__ == "__main__":
    main()
