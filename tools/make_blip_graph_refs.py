"""References for the BLIP graphs diffuse builds from weights (src/graphs/blip.ts).

A synthetic-recipe BlipForConditionalGeneration with the tiny img2txt fixture's config (test/fixtures/tiny-interrogate/blip),
its weights the hash values of tools/synthetic_checkpoint.py laid out as transformers' save_pretrained writes
model.safetensors (keys and shapes of the saved file). The file is loaded into the model as from_pretrained loads a Hub
download, and transformers 4.46.3 computes, for the fixture's three pictures: the vision model's last_hidden_state, the caption
token ids of generate with A1111's settings (greedy, min_length 24, max_length 48, prompt "a picture of "), and the text
decoder's logits over each caption. The smallest top-2 logit gap along every caption is recorded (float32 differences
between exports cannot flip an argmax far below it).
Writes test/fixtures/graphs/blip.recipe.json.gz and blip.refs.json.gz. Deterministic: rerun = same bytes.
Usage: /opt/diffuse-venv/bin/python tools/make_blip_graph_refs.py
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file
from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gzip_json import write_gzip_text  # noqa: E402
from synthetic_checkpoint import recipe_for, sha256, to_bytes  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BLIP = ROOT / "test" / "fixtures" / "tiny-interrogate" / "blip"
REFS = ROOT / "test" / "fixtures" / "tiny-interrogate" / "refs"
OUT = ROOT / "test" / "fixtures" / "graphs"
SCRATCH = Path("/tmp/diffuse-blip-graph")
PICTURES = ["ramps-96x64.png", "rings-70x90.png", "blobs-150x110.png"]
PROMPT = "a picture of "
SEED = 1919


def main() -> None:
    torch.set_num_threads(1)
    shutil.rmtree(SCRATCH, ignore_errors=True)
    SCRATCH.mkdir(parents=True)
    template = BlipForConditionalGeneration(BlipConfig.from_pretrained(BLIP))
    template.save_pretrained(SCRATCH / "template")
    saved = load_file(SCRATCH / "template" / "model.safetensors")
    recipe = recipe_for(SEED, {k: saved[k] for k in sorted(saved)}, "F32")
    data = to_bytes(recipe)
    model_dir = SCRATCH / "model"
    model_dir.mkdir()
    (model_dir / "model.safetensors").write_bytes(data)
    shutil.copy(BLIP / "config.json", model_dir / "config.json")
    # from_pretrained wants the "format: pt" metadata save_pretrained adds; the tensors are loaded as it loads them
    model = BlipForConditionalGeneration(BlipConfig.from_pretrained(model_dir)).eval()
    missing, unexpected = model.load_state_dict(load_file(model_dir / "model.safetensors"), strict=False)
    if unexpected or missing != ["text_decoder.cls.predictions.decoder.bias"]:
        raise AssertionError(f"missing {missing}, unexpected {unexpected}")
    processor = BlipImageProcessor.from_pretrained(BLIP)
    tok = BertTokenizer.from_pretrained(BLIP)
    prompt = tok(PROMPT, return_tensors="pt")
    cases = []
    for name in PICTURES:
        image = Image.open(REFS / name).convert("RGB")
        pixels = processor(images=image, return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            features = model.vision_model(pixel_values=pixels, return_dict=False)[0]
            out = model.generate(pixels, input_ids=prompt["input_ids"].clone(), attention_mask=prompt["attention_mask"],
                                 num_beams=1, do_sample=False, min_length=24, max_length=48)
            ids = out[0]
            logits = model.text_decoder(input_ids=ids[None], encoder_hidden_states=features, use_cache=False, return_dict=False)[0][0]
        gaps = []
        for pos in range(4, len(ids)):
            row = logits[pos - 1].clone()
            if pos < 24:
                row[tok.sep_token_id] = -float("inf")
            top = torch.topk(row, 2).values
            gaps.append(float(top[0] - top[1]))
        cases.append({"image": name, "features": np.asarray(features[0], dtype=np.float32).round(8).tolist(),
                      "featureShape": list(features.shape), "ids": [int(i) for i in ids],
                      "caption": tok.decode(ids, skip_special_tokens=True)[len(PROMPT):],
                      "logits": np.asarray(logits, dtype=np.float32).round(8).tolist(), "minGap": min(gaps)})
        print(f"{name}: {len(ids)} ids, caption {cases[-1]['caption']!r}, smallest top-2 gap {min(gaps):.3g}")
    OUT.mkdir(parents=True, exist_ok=True)
    write_gzip_text(OUT / "blip.recipe.json.gz", json.dumps(recipe, separators=(",", ":")))
    write_gzip_text(OUT / "blip.refs.json.gz", json.dumps({"sha256": sha256(data), "cases": cases}, separators=(",", ":")))
    print(f"model.safetensors {len(data)} bytes, sha256 {sha256(data)}")


if __name__ == "__main__":
    main()
