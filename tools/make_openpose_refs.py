"""Reference fixtures for --control type=openpose: controlnet_aux's OpenposeDetector (body only) and its Body network.

Run: /opt/diffuse-venv/bin/python tools/make_openpose_refs.py
Writes test/fixtures/openpose/ (deterministic: a rerun rewrites the same recipe, pictures and cases.json; the
network's .bin may move by ~1e-6 of max on another CPU class, torch not being bit-stable across them).

The network is controlnet_aux 0.0.10's bodypose_model (the architecture of lllyasviel/Annotators'
body_pose_model.pth, 52.3M parameters) filled from a synthetic recipe (tools/synthetic_checkpoint.py), stored as F16
(every recipe value is exact in F16) to halve the file the test writes; the keys are the .pth's (no Sequential
prefix), loaded through controlnet_aux's own util.transfer.

Network case: scene-64x40, the picture as Body.__call__ feeds it (BGR, float32 / 256 - 0.5), both outputs as float32.

Random network case: scene-64, the whole OpenposeDetector.__call__ at 64 (the last layers' biases raised so that the
random maps have peaks and limbs: 356 peaks, 14 people).

Pose cases: random weights make meaningless maps, so Body's model is replaced by one that returns synthesised outputs
(FixedMaps: at 1/8 of the padded picture, a Gaussian blob per joint in its heatmap channel, 1 - their max in the
background channel, the limb's unit direction in its two PAF channels within 0.8 map pixels of the limb; two people,
one missing an ankle, and a lone nose), and the rest of controlnet_aux runs as it is: Body.__call__'s resizes,
smoothing, peaks, limb scoring and assembly (candidate and subset recorded as JSON), and OpenposeDetector's drawing:
  * people-256x384: OpenposeDetector.__call__ at detect and image resolution 256 (its resize_image leaves the
    picture as it is);
  * people-250x330: as sd-webui-controlnet's openpose() computes it at Preprocessor Resolution 250: the picture
    edge-padded to 256x384, the detector's middle, the map cropped back (tools/controlnet_aux_refs.detector_map).
Both pictures give the same 16x23 maps (0.5 x 368 / 384 of 256x384 is 122x184, padded to 128x184), stored gzipped.
controlnet_aux.open_pose is loaded alone (tools/controlnet_aux_refs.py), scikit-image's label stubbed (hands only).
"""

import gzip
import hashlib
import json
import math
import os
import sys
import types

import numpy as np
import torch

import synthetic_checkpoint as sc
from controlnet_aux_refs import detector_map, load_aux_module, pad_edge_to_64, save_png, write_fixture
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


# The last layers' bias means: heatmaps around 0.25 (above the 0.1 peak threshold in places) and PAFs leaning
# down-right, so that the random network's whole detector finds peaks, limbs and people to compare.
OUTPUT_BIAS = {"Mconv7_stage6_L2.bias": 0.25, "Mconv7_stage6_L1.bias": 0.125}


def recipe_for(state: dict) -> dict:
    """He-like uniform scales rounded to powers of 2, small biases: activations keep their scale through 18 layers deep."""
    entries = []
    for key, tensor in state.items():
        shape = list(tensor.shape)
        scale = -4 if key.endswith(".bias") else round(math.log2(math.sqrt(6 / math.prod(shape[1:]))))
        entries.append([key, "F16", shape, "uniform", scale, OUTPUT_BIAS.get(key, 0.0)])
    return {"seed": SEED, "tensors": entries}


def network_input(picture: np.ndarray) -> torch.Tensor:
    """Body.__call__'s tensor of an RGB picture: detect_poses' BGR flip, float32 / 256 - 0.5, NCHW."""
    bgr = picture[:, :, ::-1]
    return torch.from_numpy(np.ascontiguousarray(np.transpose(np.float32(bgr[:, :, :, None]), (3, 2, 0, 1)) / 256 - 0.5))


# Joints (x, y) in the 256x384 picture, OpenPose's order: nose, neck, right shoulder/elbow/wrist, left
# shoulder/elbow/wrist, right hip/knee/ankle, left hip/knee/ankle, right/left eye, right/left ear; None: not there.
PEOPLE = [
    [(70, 60), (70, 100), (45, 100), (35, 150), (30, 195), (95, 100), (105, 150), (110, 195), (55, 200), (52, 270),
     (50, 340), (85, 200), (88, 270), (90, 340), (63, 52), (77, 52), (55, 56), (85, 56)],
    [(190, 70), (190, 112), (164, 112), (150, 80), (146, 40), (216, 112), (232, 160), (240, 205), (176, 210),
     (170, 280), (168, 345), (204, 210), (212, 280), None, (183, 62), (197, 62), (175, 66), (205, 66)],
]
LONE_NOSE = (128, 300)
LIMBS = [[2, 3], [2, 6], [3, 4], [4, 5], [6, 7], [7, 8], [2, 9], [9, 10], [10, 11], [2, 12], [12, 13], [13, 14],
         [2, 1], [1, 15], [15, 17], [1, 16], [16, 18], [3, 17], [6, 18]]
PAF_INDEX = [[31, 32], [39, 40], [33, 34], [35, 36], [41, 42], [43, 44], [19, 20], [21, 22], [23, 24], [25, 26],
             [27, 28], [29, 30], [47, 48], [49, 50], [53, 54], [51, 52], [55, 56], [37, 38], [45, 46]]
MAP_WIDTH, MAP_HEIGHT = 16, 23
TO_MAP = 0.5 * 368 / 384 / 8


def synthesised_maps() -> tuple[np.ndarray, np.ndarray]:
    """pafs [1, 38, 23, 16], heatmaps [1, 19, 23, 16] as FixedMaps returns them."""
    y, x = np.mgrid[0:MAP_HEIGHT, 0:MAP_WIDTH].astype(np.float64)
    heat = np.zeros((19, MAP_HEIGHT, MAP_WIDTH))
    paf = np.zeros((38, MAP_HEIGHT, MAP_WIDTH))
    blob = lambda p: 0.9 * np.exp(-((x - p[0] * TO_MAP) ** 2 + (y - p[1] * TO_MAP) ** 2) / (2 * 0.8 ** 2))
    for person in PEOPLE:
        for part, joint in enumerate(person):
            if joint is not None:
                heat[part] = np.maximum(heat[part], blob(joint))
        for (a, b), (cx, cy) in zip(LIMBS, PAF_INDEX):
            pa, pb = person[a - 1], person[b - 1]
            if pa is None or pb is None:
                continue
            (ax, ay), (bx, by) = np.array(pa) * TO_MAP, np.array(pb) * TO_MAP
            length = math.hypot(bx - ax, by - ay)
            t = np.clip(((x - ax) * (bx - ax) + (y - ay) * (by - ay)) / length ** 2, 0, 1)
            near = np.hypot(x - (ax + t * (bx - ax)), y - (ay + t * (by - ay))) <= 0.8
            paf[cx - 19][near] = (bx - ax) / length
            paf[cy - 19][near] = (by - ay) / length
    heat[0] = np.maximum(heat[0], blob(LONE_NOSE))
    heat[18] = 1 - heat[:18].max(0)
    return paf[None].astype(np.float32), heat[None].astype(np.float32)


class FixedMaps(torch.nn.Module):
    """Body's model replaced: the synthesised outputs whatever the picture, checked to be of its padded size."""

    def __init__(self, pafs: np.ndarray, heatmaps: np.ndarray) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # Body.__call__ reads the device off a parameter
        self.pafs, self.heatmaps = torch.from_numpy(pafs), torch.from_numpy(heatmaps)
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor):
        assert (x.shape[2] // 8, x.shape[3] // 8) == self.heatmaps.shape[2:], x.shape
        self.seen.append(x.clone())
        return self.pafs, self.heatmaps


def pose_cases(openpose) -> list:
    pafs, heatmaps = synthesised_maps()
    with gzip.GzipFile(os.path.join(OUT, "maps.bin.gz"), "wb", mtime=0) as f:
        f.write(np.concatenate([pafs.ravel(), heatmaps.ravel()]).tobytes())
    body = openpose.body.Body.__new__(openpose.body.Body)
    body.model = FixedMaps(pafs, heatmaps)
    detector = openpose.OpenposeDetector(body)
    call = lambda image, **res: detector(image, include_hand=False, include_face=False, output_type="np", **res)
    cases = []
    for name, width, height, seed, whole in [("people-256x384", 256, 384, 12, True), ("people-250x330", 250, 330, 13, False)]:
        # The scene in steps of 32: a few kB of PNG, still every resize path's arithmetic.
        picture = scene(width, height, seed) // 32 * 32
        pose = detector_map(openpose, call, picture, whole, grey=False)
        seen = picture if whole else pad_edge_to_64(picture)
        candidate, subset = body(seen[:, :, ::-1].copy())
        network_input = body.model.seen[-1].numpy().astype(np.float32)
        cases.append({
            "name": name,
            "module": "openpose",
            "picture": save_png(OUT, f"{name}.png", picture),
            "pose": save_png(OUT, f"{name}.pose.png", pose),
            "maps": {"file": "maps.bin.gz", "shapes": [list(pafs.shape), list(heatmaps.shape)]},
            "network_input": {"shape": list(network_input.shape), "sha256": hashlib.sha256(network_input.tobytes()).hexdigest()},
            "candidate": candidate.tolist(),
            "subset": subset.tolist(),
            "reference": "OpenposeDetector.__call__" if whole else "sd-webui-controlnet openpose(): edge-pad to 64, the detector's middle, crop",
        })
        print(name, "peaks", len(candidate), "people", len(subset), "parts", [int(p[19]) for p in subset])
    return cases


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

    # The random network's whole detector: many peaks and chance limbs, a busy map (every step exercised end to end).
    body = openpose.body.Body.__new__(openpose.body.Body)
    body.model = net
    detector = openpose.OpenposeDetector(body)
    picture = scene(64, 64, 5)
    pose = detector(picture, detect_resolution=64, image_resolution=64, include_hand=False, include_face=False, output_type="np")
    candidate, subset = body(picture[:, :, ::-1].copy())
    cases.append({
        "name": "scene-64",
        "module": "openpose",
        "picture": save_png(OUT, "scene-64.png", picture),
        "pose": save_png(OUT, "scene-64.pose.png", pose),
        "candidate": candidate.tolist(),
        "subset": subset.tolist(),
        "reference": "OpenposeDetector.__call__ with the random network",
    })
    print("scene-64 peaks", len(candidate), "people", len(subset))

    cases += pose_cases(openpose)
    write_fixture(OUT, "openpose", recipe, cases)


if __name__ == "__main__":
    main()
