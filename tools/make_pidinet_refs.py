"""Reference fixtures for --control type=softedge-pidinet / softedge-pidisafe: controlnet_aux's PidiNetDetector on a random PiDiNet.

Run: /opt/diffuse-venv/bin/python tools/make_pidinet_refs.py
Writes test/fixtures/pidinet/ (deterministic: a rerun rewrites the same recipe, pictures and cases.json; the edge
map's .bin may move by ~1e-6 of max on another CPU class, torch not being bit-stable across them).

The network is controlnet_aux 0.0.10's pidi.model.pidinet() (PiDiNet(60, 'carv4', dil=24, sa=True), the architecture
of lllyasviel/Annotators' table5_pidinet.pth, 0.7M parameters) with its pixel-difference convolutions as torch runs
them (not converted), filled from a synthetic recipe (tools/synthetic_checkpoint.py) whose keys carry the `module.`
prefix the real file has (controlnet_aux and sd-webui-controlnet strip it before load_state_dict). The recipe's scales
keep the classifier's input a few units wide so that the sigmoid spreads over 0..255 instead of saturating.

Cases (each a picture, the uint8 edge map, what was asked):
  * scene-64: 64x64, softedge_pidinet (safe=False), PidiNetDetector.__call__ at detect and image resolution 64 (its
    resizes leave the picture as it is); plus the network's last output (the fused edge) as float32, to check the
    graph itself (the network reads BGR / 255, as the detector feeds it).
  * scene-128x64: 128 wide, 64 high, softedge_pidisafe (safe=True: safe_step 2), the whole __call__ at 64.
  * scene-45x70: 45 wide, 70 high, softedge_pidinet as sd-webui-controlnet's pidinet() computes it at Preprocessor
    Resolution 45: edge-padded to 64x128, annotator/pidinet's apply_pidinet (the same code as PidiNetDetector's
    middle, run here through it with its resize_image made the identity), cropped back.
controlnet_aux.pidi is loaded alone (tools/controlnet_aux_refs.py).
"""

import math
import os

import numpy as np
import torch

import synthetic_checkpoint as sc
from controlnet_aux_refs import detector_map, load_aux_module, save_png, write_fixture
from make_preprocess_refs import scene

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "pidinet")
SEED = 29
PREFIX = "module."
# Powers of 2 on the blocks' 1x1 convolutions (blockX_Y.conv2): at He scale each residual block adds a branch as
# large as its input and the fourth stage's features end ~800 wide, where float32 rounding moves the fused edge by
# 6e-5 (torch's own float32 against float64); a quarter of that keeps the features near 1 (error ~1e-6).
BLOCK_SHIFT = -2
# Powers of 2 on each stage's 1x1 reduction (conv_reduces.0..3): side maps with logits spread by 1.5-2.8 (the fused
# edge by 2.4), so that the sigmoid spreads over 0..255 instead of saturating.
REDUCE_SHIFT = [3, 3, 2, 2]


def recipe_for(state: dict) -> dict:
    """He-like uniform scales rounded to powers of 2, shifted by BLOCK_SHIFT and REDUCE_SHIFT; biases small."""
    entries = []
    for key, tensor in state.items():
        shape = list(tensor.shape)
        if key.endswith(".bias"):
            scale = -3
        else:
            scale = round(math.log2(math.sqrt(6 / math.prod(shape[1:]))))
            if key.startswith("conv_reduces"):
                scale += REDUCE_SHIFT[int(key.split(".")[1])]
            elif key.startswith("block") and ".conv2." in key:
                scale += BLOCK_SHIFT
        entries.append([PREFIX + key, "F32", shape, "uniform", scale, 0.0])
    return {"seed": SEED, "tensors": entries}


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    pidi = load_aux_module("pidi")
    net = pidi.pidinet()
    recipe = recipe_for(net.state_dict())
    net.load_state_dict({k[len(PREFIX):]: v for k, v in sc.tensors(recipe).items()})
    net.float().eval()
    detector = pidi.PidiNetDetector(net)
    os.makedirs(OUT, exist_ok=True)

    cases = []
    for name, width, height, seed, safe, whole in [("scene-64", 64, 64, 5, False, True), ("scene-128x64", 128, 64, 6, True, True), ("scene-45x70", 45, 70, 7, False, False)]:
        picture = scene(width, height, seed)
        edge = detector_map(pidi, lambda image, **res: detector(image, safe=safe, output_type="np", **res), picture, whole)
        case = {
            "name": name,
            "module": "softedge_pidisafe" if safe else "softedge_pidinet",
            "picture": save_png(OUT, f"{name}.png", picture),
            "edge": save_png(OUT, f"{name}.edge.png", edge),
            "reference": "PidiNetDetector.__call__" if whole else "sd-webui-controlnet pidinet(): edge-pad to 64, apply_pidinet, crop",
        }
        if name == "scene-64":
            with torch.no_grad():
                out = net(torch.from_numpy(picture[:, :, ::-1].copy()).float().div(255.0).permute(2, 0, 1)[None])[-1]
            out.numpy().astype(np.float32).tofile(os.path.join(OUT, f"{name}.output.bin"))
            case["output"] = {"file": f"{name}.output.bin", "shape": list(out.shape)}
        cases.append(case)
        print(name, case["module"], np.histogram(edge, bins=8, range=(0, 256))[0].tolist())

    write_fixture(OUT, "pidinet", recipe, cases)


if __name__ == "__main__":
    main()
