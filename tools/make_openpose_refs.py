"""Reference fixtures for --control type=openpose: controlnet_aux's OpenposeDetector (body only) and its Body network.

Run: /opt/diffuse-venv/bin/python tools/make_openpose_refs.py
Writes test/fixtures/openpose/ (deterministic: a rerun rewrites the same recipe, pictures and cases.json; the
network's .bin may move by ~1e-6 of max on another CPU class, torch not being bit-stable across them).

The network is controlnet_aux 0.0.10's bodypose_model (the architecture of lllyasviel/Annotators'
body_pose_model.pth, 52.3M parameters) filled from a synthetic recipe (tools/synthetic_checkpoint.py), stored as F16
(every recipe value is exact in F16) to halve the file the test writes; the keys are the .pth's (no Sequential
prefix), loaded through controlnet_aux's own util.transfer.

Network case: scene-64x40, the picture as Body.__call__ feeds it (BGR, float32 / 256 - 0.5), both outputs as float32.
controlnet_aux.open_pose is loaded alone (tools/controlnet_aux_refs.py), scikit-image's label stubbed (hands only).
"""

import math
import os
import sys
import types

import numpy as np
import torch

import synthetic_checkpoint as sc
from controlnet_aux_refs import load_aux_module, save_png, write_fixture
from make_preprocess_refs import scene

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "openpose")
SEED = 29


def load_open_pose():
    """controlnet_aux.open_pose; its hand module imports scikit-image's label, absent here and unused by the body
    (include_hand=False): a stub that refuses to run stands in for it."""
    if "skimage.measure" not in sys.modules:
        def label(*_args, **_kwargs):
            raise RuntimeError("skimage is not installed: the hand detector is not part of these references")

        skimage = types.ModuleType("skimage")
        skimage.measure = types.ModuleType("skimage.measure")
        skimage.measure.label = label
        sys.modules.update({"skimage": skimage, "skimage.measure": skimage.measure})
    return load_aux_module("open_pose")


def recipe_for(state: dict) -> dict:
    """He-like uniform scales rounded to powers of 2, small biases: activations keep their scale through 18 layers deep."""
    entries = []
    for key, tensor in state.items():
        shape = list(tensor.shape)
        scale = -4 if key.endswith(".bias") else round(math.log2(math.sqrt(6 / math.prod(shape[1:]))))
        entries.append([key, "F16", shape, "uniform", scale, 0.0])
    return {"seed": SEED, "tensors": entries}


def network_input(picture: np.ndarray) -> torch.Tensor:
    """Body.__call__'s tensor of an RGB picture: detect_poses' BGR flip, float32 / 256 - 0.5, NCHW."""
    bgr = picture[:, :, ::-1]
    return torch.from_numpy(np.ascontiguousarray(np.transpose(np.float32(bgr[:, :, :, None]), (3, 2, 0, 1)) / 256 - 0.5))


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    openpose = load_open_pose()
    net = openpose.model.bodypose_model()
    # The .pth's keys: the model's without the Sequential's name (what util.transfer strips).
    file_keys = {".".join(k.split(".")[1:]): v for k, v in net.state_dict().items()}
    recipe = recipe_for(file_keys)
    net.load_state_dict(openpose.util.transfer(net, sc.tensors(recipe)))
    net.float().eval()
    os.makedirs(OUT, exist_ok=True)

    cases = []
    picture = scene(64, 40, 11)
    with torch.no_grad():
        pafs, heatmaps = net(network_input(picture))
    flat = np.concatenate([pafs.numpy().astype(np.float32).ravel(), heatmaps.numpy().astype(np.float32).ravel()])
    flat.tofile(os.path.join(OUT, "scene-64x40.network.bin"))
    cases.append({
        "name": "scene-64x40",
        "picture": save_png(OUT, "scene-64x40.png", picture),
        "network": {"file": "scene-64x40.network.bin", "shapes": [list(pafs.shape), list(heatmaps.shape)]},
    })
    print("network", [float(pafs.abs().max()), float(heatmaps.max()), float((heatmaps > 0).float().mean())])

    write_fixture(OUT, "openpose", recipe, cases)


if __name__ == "__main__":
    main()
