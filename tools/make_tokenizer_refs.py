"""Reference token ids from transformers' slow CLIPTokenizer (what diffusers pipelines use) for test/tokenizer.test.ts.

Writes test/fixtures/tokenizer/refs.json.gz and the config files of two tokenizer variants
(test/fixtures/tokenizer/<variant>/), which reuse vocab.json + merges.txt from test/fixtures/tiny-sd/tokenizer:
  sd2:    legacy files like stabilityai/stable-diffusion-2-1's, special_tokens_map.json sets pad_token "!"
  added:  saved by transformers 4.46 after add_tokens(["<cat-toy>"]) (textual inversion), with clean-up on decode
  added-legacy: the same token in the pre-4.34 layout (added_tokens.json beside the SD 1.5 configs)

ftfy must NOT be installed: CLIPTokenizer then uses its BasicTokenizer path, as most diffusers installs do.
Unicode note: this records the behaviour of this Python's unicodedata (3.11: Unicode 14.0); the corpus only uses
characters assigned in Unicode 14 or left unassigned in every version, so that Node's newer tables agree.

Usage: /opt/diffuse-venv/bin/python tools/make_tokenizer_refs.py
"""
from __future__ import annotations

import importlib.util
import json

from gzip_json import write_gzip_text
import random
import re
import shutil
import sys
import tempfile
import unicodedata
from pathlib import Path

import transformers
from transformers import CLIPTokenizer, CLIPTokenizerFast

REPO_ROOT = Path(__file__).resolve().parent.parent
TOKENIZER_DIR = REPO_ROOT / "test" / "fixtures" / "tiny-sd" / "tokenizer"
OUT_DIR = REPO_ROOT / "test" / "fixtures" / "tokenizer"
MAX_LENGTH = 77
SHARED_FILES = ("vocab.json", "merges.txt")
CONFIG_FILES = ("tokenizer_config.json", "special_tokens_map.json")
LEGACY_ADDED_FILE = "added_tokens.json"
VARIANTS = ("sd2", "added", "added-legacy")
# Unassigned in every Unicode version so far: dropped by Python and Node alike.
STILL_UNASSIGNED = {"\u0378", "\U000ffffe"}

# --- corpus ---------------------------------------------------------------------------------------

SD_PROMPTS = [
    "a photo of an astronaut riding a horse on mars",
    "masterpiece, best quality, 1girl, solo, long hair, looking at viewer, smile, blue eyes, blonde hair",
    "(masterpiece:1.2), (best quality:1.2), ultra-detailed, illustration, 1girl, cherry blossoms, wind",
    "((masterpiece)), ((best quality)), (((detailed))), [blurry], [[lowres]], highres",
    "portrait of a cyberpunk samurai, neon lights, rain, cinematic lighting, 8k, artstation, by greg rutkowski",
    "a beautiful landscape painting of mountains at sunset, oil on canvas, trending on artstation",
    "Cute corgi puppy wearing sunglasses, studio photo, 85mm, f/1.8, bokeh",
    "(photorealistic:1.4), RAW photo, 8k uhd, dslr, soft lighting, high quality, film grain, Fujifilm XT3",
    "lowres, bad anatomy, bad hands, text, error, missing fingers, extra digit, fewer digits, cropped, worst quality, low quality, normal quality, jpeg artifacts, signature, watermark, username, blurry",
    "nsfw, (worst quality:2), (low quality:2), (normal quality:2), lowres, ((monochrome)), ((grayscale))",
    "[cat:dog:0.5] sitting on a [red|blue] chair",
    "a [cat:dog:10] in a garden, AND a bird in the sky :1.3",
    "a castle on a hill BREAK dark clouds, lightning BREAK moody",
    "<lora:add_detail:0.8>, a wizard casting a spell, <hypernet:anime:1>",
    "a painting in the style of embedding:EasyNegative, (embedding:badhandv4:1.1)",
    "\\(cosplay\\) photo of a man dressed as \\(batman\\)",
    "1boy, male focus, muscular, armor, sword, fantasy, dramatic lighting, volumetric fog",
    "an isometric 3D render of a tiny cozy room, low poly, blender, octane render, 4k",
    "watercolor illustration of a fox in the snow, pastel colors, white background",
    "hyperrealistic close-up of a dew drop on a leaf, macro photography, 100mm lens",
    "a cat wearing a wizard hat, digital art, trending on ArtStation, HQ, 4K",
    "A1111 style: (red:1.5) (green:0.5) [blue] {yellow}",
    "concept art of a futuristic city skyline at night, flying cars, blade runner vibes",
    "steampunk airship above victorian london, brass and copper, intricate details",
    "anime screencap, studio ghibli style, a girl on a bicycle, summer, clouds",
    "pixel art, 16-bit, retro game sprite of a knight",
    "(((1girl))), (((solo))), kimono, japanese clothes, hair ornament, holding umbrella",
    "score_9, score_8_up, score_7_up, source_anime, rating_safe",
    "close up portrait photo of a 70 year old woman, wrinkles, (freckles:0.8), natural light",
    "a bowl of ramen, food photography, steam, chopsticks, wooden table",
    "ultra wide shot of the milky way over a desert, long exposure, 14mm",
    "a robot reading a book in a library, warm light, depth of field",
    "vaporwave aesthetic, palm trees, sunset grid, 80s retro",
    "black and white photo, film noir, detective in a trench coat, smoke",
    "a dragon made of crystal, glowing, fantasy, epic composition, highly detailed, sharp focus",
    "medieval tavern interior, candles, wooden beams, bards playing music",
    "underwater scene, coral reef, sea turtle, god rays, National Geographic",
    "Van Gogh's Starry Night but with cats",
    "a logo for a coffee shop called 'Bean There', flat design, vector",
    "text that says \"HELLO WORLD\" in neon letters",
    "(masterpiece, best quality:1.3), extremely detailed CG unity 8k wallpaper",
    "tattoo design, geometric wolf, line art, minimalist",
    "knolling photo of camping gear, top-down view",
    "ink sketch of a sparrow, sumi-e, negative space",
    "architecture photo, brutalist concrete building, overcast sky",
    "isometric view of a floating island with waterfalls, game art",
    "(rim lighting:1.2), two-tone lighting, dimly lit, low key",
    "a girl with (((heterochromia))) eyes, (red eye:1.1), (blue eye:1.1)",
    "epic fantasy battle scene, thousands of soldiers, siege of a fortress, matte painting",
    "product shot of a perfume bottle on marble, studio lighting, reflections",
]

NEGATIVE_PROMPTS = [
    "(worst quality, low quality:1.4), (deformed, distorted, disfigured:1.3), poorly drawn, bad anatomy",
    "EasyNegative, badhandv4, ng_deepnegative_v1_75t, (bad-hands-5:1.2)",
    "extra limbs, extra fingers, mutated hands, (mutation:1.2), ugly, duplicate, morbid",
    "blurry, out of focus, watermark, signature, text, logo, cropped, jpeg artifacts",
    "cartoon, 3d, ((disfigured)), ((bad art)), ((deformed)), ((poorly drawn)), ((extra limbs)), ((b&w)), weird colors",
]

UNICODE_PROMPTS = [
    "café crème brûlée, naïve façade, résumé",
    "CAFÉ CRÈME BRÛLÉE",
    "cafe\u0301 with a decomposed accent",            # NFD é, NFC makes it one letter
    "Straße, GROSSE STRASSE, ẞ capital sharp s",
    "İstanbul, IĞDIR, ıspanak, Diyarbakır",           # Turkish dotted/dotless i
    "ΟΔΥΣΣΕΥΣ and Σίσυφος, ΣΑΣ, σοφός",               # Greek final sigma
    "Ἀθῆναι ᾼ ᾳ ᾷ",                                   # polytonic Greek with ypogegrammeni
    "α\u0345 η\u0345 ω\u0345 x\u0345y \u0345alone",     # combining ypogegrammeni that may or may not compose
    "Москва, Красная площадь, зимой",
    "ПРИВЕТ МИР ёлка ЁЛКА",
    "北京天安门广场, 故宫, 长城",
    "東京タワー、富士山と桜",
    "ひらがな カタカナ ｶﾀｶﾅ",                          # half-width katakana
    "한국어 프롬프트 서울의 밤",
    "\u1112\u1161\u11ab\u1100\u1173\u11af decomposed hangul",
    "مرحبا بالعالم، قطة سوداء",
    "السَّلَامُ عَلَيْكُمْ",
    "नमस्ते दुनिया, ताज महल",
    "שלום עולם",
    "สวัสดีชาวโลก ภาพวาดสีน้ำ",
    "Ελληνικά και English μαζί",
    "ｆｕｌｌ－ｗｉｄｔｈ　ｔｅｘｔ　１２３",
    "①②③ ½ ¾ ² ³ Ⅻ ⅷ",
    "ﬁnal ﬂower ﬀ ligatures",
    "Ⓐⓑⓒ circled ⒜ parenthesized",
    "K Kelvin sign and Å angstrom sign",
    "it'ſ long s 'ſ and ſtartoftext",
    "ǅ ǈ ǋ titlecase digraphs",
    "🐱 cat emoji, 🐶 dog, 🌸🌸🌸",
    "👨‍👩‍👧‍👦 family, 🏳️‍🌈 flag, 👩🏽‍💻 coder",
    "🇯🇵 🇺🇸 🇩🇪 flags",
    "1️⃣ 2️⃣ #️⃣ keycaps",
    "👍🏻👍🏿 skin tones",
    "🏴󠁧󠁢󠁥󠁮󠁧󠁿 england tag sequence",
    "❤️ red heart with VS16, ❤ without",
    "☃ ★ ☆ ♪ ♫ → ← ⇒ ∞ ≈ ≠ ± × ÷",
    "€100 £50 ¥1000 ₹500 $20",
    "“smart quotes” ‘single’ «guillemets» „German“",
    "em—dash en–dash ellipsis… bullet • middot ·",
    "Ñandú, São Paulo, Kraków, Đà Nẵng, Reykjavík",
    "Ǆ ǆ Ǳ Ǳ Ĳ ĳ Œ œ Æ æ Ø ø Þ þ Ð ð",
    "z\u0351\u0352\u0357\u0350algo text",
    "e\u0301\u0302\u0303 stacked marks",
    "\u00e9 vs e\u0301 vs \u0065\u0301",
    "ǭ ṩ ḉ ǻ NFC composition",
    "Ω ohm sign vs Ω omega",
    "ℌ ℍ ℕ ℤ ℝ ℂ",
    "𝓗𝓮𝓵𝓵𝓸 𝕎𝕠𝕣𝕝𝕕 𝐁𝐨𝐥𝐝",
    "𠀀𠀁 CJK extension B, 㐀 extension A",
    "豈 更 CJK compatibility ideographs",
    "⺀ radical ⼀ kangxi",
    "ʻokina Hawaiʻi",
    "Ꭰ Cherokee ꭰ",
    "ᏸ ᏹ cherokee small",
    "ⓐ ⓩ Ⓩ circled letters",
    "ꙮ multiocular o",
    "աբգ Armenian ԱԲԳ",
    "ქართული ენა Georgian",
    "ᚠᚢᚦ runes ᛗ",
    "Ⰰⰰ Glagolitic",
    "🫠 melting face 🥹 holding back tears",
    "\u200d\u200c zero width joiners alone",
    "\ufe0f variation selector alone",
]

PUNCTUATION_NUMBER_PROMPTS = [
    "1920x1080, 3.5, 1,000,000, 0.75 and -12 and +7",
    "4k 8K 16:9 2:3 f/2.8 1/250s ISO100",
    "version 1.5.2, v2.1, SDXL-1.0, sd_xl_base_1.0.safetensors",
    "!!!", "???", "...", "!?!?", ",,,,", "---", "___", "***", "###", "@@@", "~~~", "|||",
    "wow!!! really??? yes...",
    "((((((((((deep))))))))))",
    "[[[[brackets]]]] {{{{braces}}}}",
    "a-b_c.d,e;f:g!h?i",
    "don't, DON'T, Don't, won't, can't, it's, IT'S, we're, they've, I'm, I'll, I'd, you'd",
    "rock'n'roll, 'quoted', ''double'', ' spaced ' apostrophes",
    "o'clock 'tis 's 't 're 've 'm 'll 'd",
    "dog's bone, dogs' bones, James's",
    "3.14159265358979323846264338327950288419716939937510",
    "12345678901234567890",
    "#hashtag @mention $variable %percent ^caret &amp *star",
    "C++ C# F# .NET node.js",
    "email@example.com and user.name+tag@domain.co.uk",
    "path/to/file.png, C:\\Users\\me\\image.jpg",
    "key=value; a==b != c <= d >= e",
    "<html><body>tags</body></html>",
    "`code` and ```fenced```",
    "=^.^= (╯°□°)╯︵ ┻━┻ ¯\\_(ツ)_/¯",
    ":) :( :D ;) :P <3 </3",
    "100% 50/50 24/7 1st 2nd 3rd 4th",
    "2023-10-05T14:30:00Z",
    "-- double dash --",
    "a</w>b literal end-of-word marker",
    "Ġ Ċ ĉ byte-level lookalikes",
]

WHITESPACE_CONTROL_PROMPTS = [
    "", " ", "   ", "\t", "\n", "\r\n", "\n\n\n", " \t \n ", "\u00a0", "\u3000", "\u2028\u2029",
    "tabs\tbetween\twords",
    "new\nline\nprompt",
    "windows\r\nline\r\nendings",
    "  leading and trailing spaces  ",
    "multiple     spaces     inside",
    "non\u00a0breaking\u00a0space",
    "ideographic\u3000space",
    "thin\u2009space en\u2002space em\u2003space",
    "line\u2028separator paragraph\u2029separator",
    "vertical\x0btab form\x0cfeed",
    "file\x1cgroup\x1drecord\x1eunit\x1fseparators",
    "next\x85line",
    "null\x00byte",
    "bell\x07escape\x1b[31mred\x1b[0m",
    "delete\x7fchar",
    "zero\u200bwidth\u200bspace",
    "soft\u00adhyphen",
    "bom\ufeffinside",
    "left\u200eto\u200fright marks",
    "replacement \ufffd char",
    "mongolian\u180evowel separator",
    "word\u2060joiner",
    "private\ue000use\U000f0000area",
    "unassigned\u0378code point\U000ffffe",
    "lone \ud800 surrogate",
    "ogham\u1680space",
    "narrow\u202fno-break",
    "math\u205fspace",
]

SPECIAL_TOKEN_PROMPTS = [
    "<|startoftext|>",
    "<|endoftext|>",
    "<|startoftext|>a cat<|endoftext|>",
    "a<|endoftext|>b",
    "!!<|endoftext|>!!",
    "<|endoftext|><|endoftext|><|endoftext|>",
    "<|ENDOFTEXT|> uppercase",
    "<|StartOfText|>mixed",
    "< |endoftext| > spaced",
    "<|endoftext| almost",
    "|endoftext|>",
    "<|startoftext|<|endoftext|>",
    "<|ſtartoftext|> long s matches case-insensitively",
    "text <|endoftext|>more text<|startoftext|> end",
    "<cat-toy> and <CAT-TOY> and <cat-toy>s",
    "a photo of <cat-toy> on the beach!",
]

WEB_PROMPTS = [
    "&amp; &lt;3 &gt; &quot;quoted&quot; &#39;apos&#39; &nbsp; &#x27;",
    "Tom &amp; Jerry",
    "https://example.com/path?query=1&other=two#anchor",
    "http://www.artstation.com/artwork/abc123",
    "www.example.org/image.png",
    "ftp://files.example.net/a_b-c.zip",
    "hf:runwayml/stable-diffusion-v1-5@main",
    "{\"prompt\": \"a cat\", \"steps\": 20}",
    "<|im_start|>system<|im_end|>",
    "[url=https://x.y]link[/url]",
]


def long_prompts() -> list[str]:
    tags = ", ".join(SD_PROMPTS[1:6])
    return [
        tags,  # just over 77 tokens
        ", ".join(SD_PROMPTS),  # several hundred tokens
        " ".join(["masterpiece"] * 100),
        "word " * 80,
        "(" * 40 + "deep" + ")" * 40,
        " ".join(NEGATIVE_PROMPTS * 3),
        "a " * 74 + "cat",  # exactly 75 tokens: fits
        "a " * 75 + "cat",  # 76 tokens: one truncated
        "🐱" * 30,
        ", ".join(UNICODE_PROMPTS[:20]),
    ]


def ascii_sweep() -> list[str]:
    # Every printable ASCII character doubled, inside a word and alone.
    return [f"x{c}{c}y {c} z{c}" for c in map(chr, range(0x21, 0x7F))]


def case_variants() -> list[str]:
    picks = SD_PROMPTS[:10] + PUNCTUATION_NUMBER_PROMPTS[8:11]
    return [p.upper() for p in picks] + [p.title() for p in picks[:5]]


def corpus() -> list[str]:
    prompts = (
        SD_PROMPTS + NEGATIVE_PROMPTS + UNICODE_PROMPTS + PUNCTUATION_NUMBER_PROMPTS + WHITESPACE_CONTROL_PROMPTS
        + SPECIAL_TOKEN_PROMPTS + WEB_PROMPTS + long_prompts() + ascii_sweep() + case_variants()
    )
    seen: set[str] = set()
    unique = [p for p in prompts if not (p in seen or seen.add(p))]
    for prompt in unique:
        for char in prompt:
            if unicodedata.category(char) == "Cn" and char not in STILL_UNASSIGNED:
                raise ValueError(f"U+{ord(char):04X} is unassigned in Unicode {unicodedata.unidata_version}: {prompt!r}")
    return unique


# --- tokenizer variants -----------------------------------------------------------------------------

def write_sd2_configs(out: Path) -> None:
    """SD 2.x ships the openai configs with pad_token "!" in special_tokens_map.json (it overrides the config)."""
    config = json.loads((TOKENIZER_DIR / "tokenizer_config.json").read_text())
    special = json.loads((TOKENIZER_DIR / "special_tokens_map.json").read_text())
    special["pad_token"] = "!"
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")


def write_added_token_configs(out: Path) -> None:
    """What textual inversion leaves behind: a tokenizer saved after add_tokens, in the current format."""
    tok = CLIPTokenizer.from_pretrained(str(TOKENIZER_DIR), clean_up_tokenization_spaces=True)
    tok.add_tokens(["<cat-toy>"])
    with tempfile.TemporaryDirectory() as tmp:
        tok.save_pretrained(tmp)
        for name in CONFIG_FILES:
            shutil.copy(Path(tmp) / name, out / name)


def write_legacy_added_token_configs(out: Path) -> None:
    for name in CONFIG_FILES:
        shutil.copy(TOKENIZER_DIR / name, out / name)
    (out / LEGACY_ADDED_FILE).write_text(json.dumps({"<cat-toy>": 49408}) + "\n")


def assemble(variant_dir: Path, tmp: Path) -> Path:
    """A loadable tokenizer directory: the variant's configs plus the shared vocabulary files."""
    target = tmp / variant_dir.name
    target.mkdir()
    for name in SHARED_FILES:
        shutil.copy(TOKENIZER_DIR / name, target / name)
    for name in CONFIG_FILES + (LEGACY_ADDED_FILE,):
        if (variant_dir / name).exists():
            shutil.copy(variant_dir / name, target / name)
    return target


# --- references ---------------------------------------------------------------------------------------

def pipeline_ids(tok: CLIPTokenizer, prompt: str) -> tuple[list[int], list[int]]:
    # Exactly the call in diffusers' StableDiffusionPipeline.encode_prompt.
    enc = tok(prompt, padding="max_length", max_length=tok.model_max_length, truncation=True)
    return enc.input_ids, enc.attention_mask


def prompt_record(slow: CLIPTokenizer, fast: CLIPTokenizerFast, sd2: CLIPTokenizer, prompt: str) -> dict:
    ids = slow.encode(prompt, add_special_tokens=False)
    input_ids, attention_mask = pipeline_ids(slow, prompt)
    record = {
        "prompt": prompt,
        "ids": ids,
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "sd2_input_ids": pipeline_ids(sd2, prompt)[0],
        "decoded": slow.decode(ids),
        "decoded_skip_special": slow.decode(input_ids, skip_special_tokens=True),
        "decoded_with_special": slow.decode(input_ids),
    }
    # Information only: the slow tokenizer is the reference.
    try:
        fast_ids = fast.encode(prompt, add_special_tokens=False)
    except TypeError as error:  # the Rust tokenizer refuses strings that are not valid Unicode
        record["fast_error"] = str(error)
    else:
        if fast_ids != ids:
            record["fast_ids"] = fast_ids
    return record


OPTION_CASES = [
    {"max_length": 77, "padding": False, "truncation": True},
    {"max_length": 77, "padding": False, "truncation": False},
    {"max_length": 77, "padding": True, "truncation": False},
    {"max_length": 10, "padding": True, "truncation": True},
    {"max_length": 3, "padding": True, "truncation": True},
]


def option_records(slow: CLIPTokenizer, prompts: list[str]) -> list[dict]:
    records = []
    for prompt in prompts:
        for case in OPTION_CASES:
            enc = slow(
                prompt,
                max_length=case["max_length"],
                padding="max_length" if case["padding"] else False,
                truncation=case["truncation"],
            )
            records.append({"prompt": prompt, **case, "input_ids": enc.input_ids, "attention_mask": enc.attention_mask})
    return records


def decode_records(slow: CLIPTokenizer) -> list[dict]:
    """Id sequences that are not whole words: split multi-byte characters, bare byte tokens, specials inside."""
    rng = random.Random(1234)
    emoji = slow.encode("👨‍👩‍👧 ß 東京", add_special_tokens=False)
    cases = [emoji[1:], emoji[:-1], emoji[::2], [49406, 49406, 320, 49407, 49407]]
    cases += [[rng.randrange(512) for _ in range(rng.randrange(1, 12))] for _ in range(40)]
    return [
        {"ids": ids, "decoded": slow.decode(ids), "decoded_skip_special": slow.decode(ids, skip_special_tokens=True)}
        for ids in cases
    ]


def added_token_records(tok: CLIPTokenizer, prompts: list[str]) -> list[dict]:
    records = []
    for prompt in prompts:
        input_ids, attention_mask = pipeline_ids(tok, prompt)
        records.append({
            "prompt": prompt,
            "ids": tok.encode(prompt, add_special_tokens=False),
            "input_ids": input_ids,
            "decoded": tok.decode(input_ids, skip_special_tokens=True),
        })
    return records


def main() -> None:
    if importlib.util.find_spec("ftfy") is not None:
        sys.exit("ftfy is installed: CLIPTokenizer would use ftfy.fix_text, not the BasicTokenizer path diffusers users get")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name in VARIANTS:
        (OUT_DIR / name).mkdir(exist_ok=True)
    write_sd2_configs(OUT_DIR / "sd2")
    write_added_token_configs(OUT_DIR / "added")
    write_legacy_added_token_configs(OUT_DIR / "added-legacy")

    prompts = corpus()
    slow = CLIPTokenizer.from_pretrained(str(TOKENIZER_DIR))
    fast = CLIPTokenizerFast.from_pretrained(str(TOKENIZER_DIR), from_slow=True)
    with tempfile.TemporaryDirectory() as tmp:
        sd2, added, added_legacy = (
            CLIPTokenizer.from_pretrained(str(assemble(OUT_DIR / name, Path(tmp)))) for name in VARIANTS
        )
    assert sd2.pad_token_id == 0
    assert added.convert_tokens_to_ids("<cat-toy>") == added_legacy.convert_tokens_to_ids("<cat-toy>") == 49408

    records = [prompt_record(slow, fast, sd2, p) for p in prompts]
    refs = {
        "generator": "tools/make_tokenizer_refs.py",
        "transformers": transformers.__version__,
        "unicode": unicodedata.unidata_version,
        "special_ids": {
            "bos": slow.bos_token_id, "eos": slow.eos_token_id, "pad": slow.pad_token_id, "unk": slow.unk_token_id,
            "sd2_pad": sd2.pad_token_id, "model_max_length": slow.model_max_length,
        },
        "prompts": records,
        "options": option_records(slow, [SD_PROMPTS[0], long_prompts()[1], "", "a " * 75 + "cat"]),
        "decode": decode_records(slow),
        "added_token": {
            name: added_token_records(tok, SPECIAL_TOKEN_PROMPTS[-2:] + [SD_PROMPTS[0], "wow!!! , . ? don 't"])
            for name, tok in (("added", added), ("added-legacy", added_legacy))
        },
    }
    # One record per line keeps the file greppable and diffs readable.
    lines = ",\n".join(json.dumps(r, ensure_ascii=False) for r in records)
    text = json.dumps({**refs, "prompts": []}, ensure_ascii=False, indent=1)
    text = text.replace('"prompts": []', '"prompts": [\n' + lines + "\n]")
    # Lone surrogates (one prompt has one) cannot be written as UTF-8: keep them as JSON escapes.
    text = re.sub("[\ud800-\udfff]", lambda m: f"\\u{ord(m.group()):04x}", text)
    write_gzip_text(OUT_DIR / "refs.json.gz", text + "\n")

    fast_diffs = [r["prompt"] for r in records if "fast_ids" in r or "fast_error" in r]
    print(f"wrote {len(records)} prompts to {OUT_DIR / 'refs.json.gz'}; CLIPTokenizerFast differs on {len(fast_diffs)}")
    for prompt in fast_diffs:
        print("  fast differs:", json.dumps(prompt)[:100])


if __name__ == "__main__":
    main()
