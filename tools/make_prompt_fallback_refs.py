"""References for malformed prompt editing (src/text/prompt-schedule-parser.ts): A1111's own
get_learned_conditioning_prompt_schedules (modules/prompt_parser.py of a stable-diffusion-webui
checkout, loaded by path; nothing of it is copied here) under lark 1.2 on prompts that mix
unbalanced `[`, `{`, `(` with `:` and `|` — the case A1111's doctest "a [{b|d{:.5] c" claims a
partial parse for ("not handling this right now"). lark never returns a partial parse: a prompt
without a full parse raises LarkError and A1111 uses it verbatim; these references show where it
does parse such prompts and how.

Usage: /opt/diffuse-venv/bin/python tools/make_prompt_fallback_refs.py --a1111 /path/to/stable-diffusion-webui
Writes: test/fixtures/prompt/fallbacks.json.gz
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import random
from pathlib import Path

from gzip_json import write_gzip_text

OUT = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "prompt" / "fallbacks.json.gz"
STEPS = 10
SEED = 2026

DOCTEST = ["a [{b|d{:.5] c", "a [b|d:.5] c", "[a|b:1]", "[a:b|c:1]", "[{a|b:2]", "a [b|c", "[a|b]:", "[a:[b|c]:1]:",
           "((a][:b:c [d:3]", "a [unbalanced", "{a|b}", "[a{|}b:2]", "[a|{b:c}:3]"]
CHARS = ["[", "]", "{", "}", ":", "|", "(", ")", "a", "b", " ", "1", ".5", "c"]


def structured(rng: random.Random, depth: int = 0) -> str:
    """A well-formed-ish prompt with braces among the text, nested up to 3 groups deep."""
    def atom() -> str:
        return rng.choice(["a", "b", " c", "{d", "e}", "", " ", "1", "x y", "{", "}"])

    def group() -> str:
        if depth >= 3:
            return atom()
        inner = lambda: structured(rng, depth + 1)  # noqa: E731
        when = rng.choice(["1", "2", "0.5", " 3 ", ".3", "-1", "x", "5."])
        return rng.choice([f"[{inner()}:{inner()}:{when}]", f"[{inner()}:{when}]", f"[{inner()}|{inner()}]",
                           f"[{inner()}|{inner()}|{inner()}]", f"({inner()})", f"({inner()}:1.2)", f"[{inner()}]",
                           f"[{inner()}|{inner()}:{when}]"])
    return "".join(rng.choice([atom, group, group])() for _ in range(rng.randint(1, 3)))


def mutate(rng: random.Random, prompt: str) -> str:
    chars = list(prompt)
    for _ in range(rng.randint(1, 3)):
        position = rng.randint(0, len(chars))
        action = rng.choice(["delete", "insert", "duplicate"])
        if action == "insert" or not chars:
            chars.insert(position, rng.choice("[]():|{}"))
        elif action == "delete" and position < len(chars):
            del chars[position]
        elif position < len(chars):
            chars.insert(position, chars[position])
    return "".join(chars)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a1111", type=Path, required=True, help="stable-diffusion-webui checkout")
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location("a1111_prompt_parser", args.a1111 / "modules" / "prompt_parser.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    import lark

    rng = random.Random(SEED)
    prompts = DOCTEST + ["".join(rng.choice(CHARS) for _ in range(rng.randint(2, 12))) for _ in range(3000)]
    prompts += [mutate(rng, structured(rng)) for _ in range(3000)]
    cases = [{"prompt": p, "result": module.get_learned_conditioning_prompt_schedules([p], STEPS)[0]} for p in prompts]
    write_gzip_text(OUT, json.dumps({"generator": "tools/make_prompt_fallback_refs.py", "lark": lark.__version__, "steps": STEPS,
                                     "cases": cases}, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(cases)} prompts)")


if __name__ == "__main__":
    main()
