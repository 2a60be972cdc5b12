"""Reference fixtures for --control type=openpose-hand/-face/-faceonly/-full: controlnet_aux 0.0.10's OpenposeDetector
with include_hand / include_face, its Hand and Face estimators and their networks.

Run: /opt/diffuse-venv/bin/python tools/make_openpose_hands_refs.py   (needs scikit-image and matplotlib, as
controlnet_aux's hand.py and util.draw_handpose import them; tools/requirements.txt pins both)
Writes test/fixtures/openpose-hands/ (deterministic; the networks' .bin may move by ~1e-6 of max on another CPU class).

Drawing cases: util.draw_handpose (two hands) and util.draw_facepose on black canvases, keypoints as detect_hands and
detect_face make them (np.float32 fractions of whole pixels, -1 for a part not found; stored as the pixels, x row and y
row), some on the canvas' first column (not drawn: int(x * W) must pass 0.01).

Network cases: handpose_model and FaceNet (the architectures of lllyasviel/Annotators' hand_pose_model.pth, 36.8M
parameters, and facenet.pth) filled from synthetic recipes (tools/synthetic_checkpoint.py, F16), the hand's keys
without the Sequential's prefix (loaded through util.transfer), the face's as FaceNet names them; the scene's BGR / 256
- 0.5 in, the hand's output and the face's last stage out.

Pose cases: the body network replaced by make_openpose_refs' FixedMaps (the same two people, maps.bin.gz of
test/fixtures/openpose), the hand and face networks by modules whose maps are made by arithmetic alone (+ - * / on
exact binary fractions, so the test makes the same float32s): per hand joint a cone max(0, 1 - d^2 / r^2) * 0.9 at a
fixed place in the box whatever its size (one joint absent, one with a second, weaker cone), per face landmark a cone on
a 48x48 map (two absent); the background channels 1 - the max. The rest of controlnet_aux runs as it is: handDetect,
faceDetect, the crops, Hand.__call__ (GaussianBlur, four scales, smart_resize, label, npmax), Face.__call__ (smart_resize
to 384, F.interpolate bilinear with align_corners), compute_peaks_from_heatmaps, detect_hands/detect_face's float32
fractions and draw_poses. Recorded: every network input's SHA-256, the boxes, the keypoints' float32 fractions
(SHA-256), the maps.
  * people-256x384-{hand,face,faceonly,full}: OpenposeDetector.__call__ at 256 (the picture as it is);
  * people-250x330-full: as sd-webui-controlnet's openpose_full computes it at Preprocessor Resolution 250 (edge-pad to
    64, the detector's middle, crop back).
"""

import gzip
import hashlib
import json
import math
import os

import numpy as np
import skimage.measure  # noqa: F401  (imported first: make_openpose_refs stubs it when absent)
import torch
from PIL import Image

import synthetic_checkpoint as sc
from controlnet_aux_refs import detector_map, save_png
from make_openpose_refs import FixedMaps, load_open_pose, recipe_for as body_recipe_for, synthesised_maps

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "openpose-hands")
BODY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "openpose")
HAND_SEED, FACE_SEED = 31, 37


def sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def draw_cases(util) -> list:
    rng = np.random.default_rng(41)
    cases = []
    for k in range(10):
        width, height = int(rng.integers(40, 130)), int(rng.integers(40, 130))

        def pixels(count: int) -> np.ndarray:
            """Whole pixels, -1 for not found (-3..-1 drawn as -1), some on the first column."""
            px = np.maximum(rng.integers(-3, width, count), -1)
            py = np.maximum(rng.integers(-3, height, count), -1)
            px[rng.random(count) < 0.1] = 0
            return np.stack([px, py], 1)

        def keypoints(pixels: np.ndarray) -> list:
            peaks = pixels.astype(np.float32)
            peaks[:, 0] /= float(width)
            peaks[:, 1] /= float(height)
            return [util.Keypoint(x=p[0], y=p[1]) for p in peaks]

        hands = [pixels(21), pixels(21)]
        face = pixels(71 if k % 2 else 12)
        canvas = np.zeros((height, width, 3), np.uint8)
        for hand in hands:
            canvas = util.draw_handpose(canvas, keypoints(hand))
        canvas = util.draw_facepose(canvas, keypoints(face))
        cases.append({"width": width, "height": height, "hands": [h.T.tolist() for h in hands], "face": face.T.tolist(), "canvas": sha(canvas)})
    return cases


def recipe(seed: int, state: dict) -> dict:
    return {"seed": seed, "tensors": body_recipe_for(state)["tensors"]}


def network_cases(openpose) -> tuple[list, dict, dict]:
    from make_preprocess_refs import scene

    hand_net = openpose.model.handpose_model()
    hand_keys = {".".join(k.split(".")[1:]): v for k, v in hand_net.state_dict().items()}
    hand_recipe = recipe(HAND_SEED, hand_keys)
    hand_net.load_state_dict(openpose.util.transfer(hand_net, sc.tensors(hand_recipe)))
    face_net = openpose.face.FaceNet()
    face_recipe = recipe(FACE_SEED, face_net.state_dict())
    face_net.load_state_dict(sc.tensors(face_recipe))
    cases = []
    for name, net, width, height in [("hand", hand_net, 40, 32), ("face", face_net, 32, 40)]:
        net.float().eval()
        picture = scene(width, height, 23)
        x = torch.from_numpy(np.ascontiguousarray(np.transpose(np.float32(picture[:, :, ::-1]), (2, 0, 1))[None]) / 256 - 0.5)
        with torch.no_grad():
            out = net(x)
        out = (out[-1] if isinstance(out, list) else out).numpy().astype(np.float32)
        out.tofile(os.path.join(OUT, f"{name}.network.bin"))
        cases.append({"name": name, "picture": save_png(OUT, f"{name}-{width}x{height}.png", picture),
                      "network": {"file": f"{name}.network.bin", "shape": list(out.shape)}})
        print(name, "network", out.shape, float(np.abs(out).max()))
    return cases, hand_recipe, face_recipe


# The hand's joints as fractions of its box (x, y), in OpenPose's order (wrist, then each finger base to tip); None:
# absent. Joint 8's channel has a second, weaker cone (the label with the larger sum wins).
HAND = [(8 / 16, 14 / 16), (5 / 16, 12 / 16), (4 / 16, 10 / 16), (3 / 16, 8 / 16), (2 / 16, 6 / 16),
        (6 / 16, 8 / 16), (6 / 16, 6 / 16), (6 / 16, 4 / 16), (6 / 16, 2 / 16), (8 / 16, 7 / 16),
        (8 / 16, 5 / 16), (8 / 16, 3 / 16), None, (10 / 16, 8 / 16), (10 / 16, 6 / 16),
        (10 / 16, 4 / 16), (10 / 16, 3 / 16), (12 / 16, 9 / 16), (13 / 16, 7 / 16), (13 / 16, 6 / 16), (14 / 16, 5 / 16)]
HAND_SECOND = (8, (3 / 16, 13 / 16), 0.5)
HAND_RADIUS = 3 / 2  # in map pixels at 1/8 of the scale's side


def cone(x: np.ndarray, y: np.ndarray, cx: float, cy: float, radius: float, peak: float) -> np.ndarray:
    """max(0, 1 - d^2 / r^2) * peak in float64 from + - * / alone."""
    d2 = (x - cx) * (x - cx) + (y - cy) * (y - cy)
    return np.maximum(0.0, 1.0 - d2 / (radius * radius)) * peak


def hand_maps(side: int) -> np.ndarray:
    """[1, 22, side, side] float32."""
    y, x = np.mgrid[0:side, 0:side].astype(np.float64)
    maps = np.zeros((22, side, side))
    for j, joint in enumerate(HAND):
        if joint is not None:
            maps[j] = cone(x, y, joint[0] * side, joint[1] * side, HAND_RADIUS, 0.9)
    j, (u, v), peak = HAND_SECOND
    maps[j] = np.maximum(maps[j], cone(x, y, u * side, v * side, HAND_RADIUS, peak))
    maps[21] = 1.0 - maps[:21].max(0)
    return maps[None].astype(np.float32)


FACE_SIDE = 48
FACE_ABSENT = (17, 40)
FACE_RADIUS = 5 / 4


def face_landmark(k: int) -> tuple[float, float]:
    """Landmark k's place on the 48x48 map: rows of ten, exact eighths."""
    return (4 + (k % 10) * 4 + (k // 10) / 8, 6 + (k // 10) * 5 + (k % 3) / 4)


def face_maps() -> np.ndarray:
    """[1, 71, 48, 48] float32."""
    y, x = np.mgrid[0:FACE_SIDE, 0:FACE_SIDE].astype(np.float64)
    maps = np.zeros((71, FACE_SIDE, FACE_SIDE))
    for k in range(70):
        if k not in FACE_ABSENT:
            maps[k] = cone(x, y, *face_landmark(k), FACE_RADIUS, 0.8)
    maps[70] = 1.0 - maps[:70].max(0)
    return maps[None].astype(np.float32)


class FixedHand(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[str] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[2] == x.shape[3] and x.shape[2] % 8 == 0, x.shape
        self.seen.append(sha(x.numpy().astype(np.float32)))
        return torch.from_numpy(hand_maps(x.shape[2] // 8))


class FixedFace(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[str] = []

    def forward(self, x: torch.Tensor) -> list:
        assert tuple(x.shape) == (1, 3, 384, 384), x.shape
        self.seen.append(sha(x.numpy().astype(np.float32)))
        return [torch.from_numpy(face_maps())]


def keypoints_sha(keypoints) -> str | None:
    """The float32 fractions (x, y per keypoint) a hand or face came out as, by SHA-256."""
    return None if keypoints is None else sha(np.array([[k.x, k.y] for k in keypoints], np.float32))


MODES = {"hand": dict(include_hand=True), "face": dict(include_face=True), "faceonly": dict(include_body=False, include_face=True),
         "full": dict(include_hand=True, include_face=True)}


def pose_cases(openpose) -> list:
    pafs, heatmaps = synthesised_maps()
    with gzip.open(os.path.join(BODY, "maps.bin.gz"), "rb") as f:
        assert f.read() == np.concatenate([pafs.ravel(), heatmaps.ravel()]).tobytes(), "test/fixtures/openpose/maps.bin.gz is stale"
    body = openpose.body.Body.__new__(openpose.body.Body)
    body.model = FixedMaps(pafs, heatmaps)
    hand = openpose.hand.Hand.__new__(openpose.hand.Hand)
    hand.model = FixedHand()
    face = openpose.face.Face.__new__(openpose.face.Face)
    face.model = FixedFace()
    face.inference_size, face.sigma, face.threshold = 736, 2.5, 0.1
    detector = openpose.OpenposeDetector(body, hand, face)

    found = {}
    as_detect_hands, as_detect_face = detector.detect_hands, detector.detect_face

    def detect_hands(b, image):
        boxes = openpose.util.handDetect(b, image)
        left, right = as_detect_hands(b, image)
        found.setdefault("hands", []).append({"boxes": [[int(x), int(y), int(w), bool(is_left)] for x, y, w, is_left in boxes],
                                              "left": keypoints_sha(left), "right": keypoints_sha(right)})
        return left, right

    def detect_face(b, image):
        box = openpose.util.faceDetect(b, image)
        keypoints = as_detect_face(b, image)
        found.setdefault("faces", []).append({"box": None if box is None else [int(v) for v in box], "keypoints": keypoints_sha(keypoints)})
        return keypoints

    detector.detect_hands, detector.detect_face = detect_hands, detect_face
    cases = []
    runs = [(f"people-256x384-{mode}", "people-256x384.png", mode, True) for mode in MODES] + [("people-250x330-full", "people-250x330.png", "full", False)]
    for name, picture_file, mode, whole in runs:
        picture = np.array(Image.open(os.path.join(BODY, picture_file)).convert("RGB"))
        found.clear()
        hand.model.seen.clear()
        face.model.seen.clear()
        call = lambda image, **res: detector(image, output_type="np", **MODES[mode], **res)
        pose = detector_map(openpose, call, picture, whole, grey=False)
        cases.append({"name": name, "module": f"openpose_{mode}", "picture": picture_file, "pose": save_png(OUT, f"{name}.pose.png", pose),
                      "hand_inputs": list(hand.model.seen), "face_inputs": list(face.model.seen), **found,
                      "reference": "OpenposeDetector.__call__" if whole else "sd-webui-controlnet: edge-pad to 64, the detector's middle, crop"})
        print(name, "hand runs", len(hand.model.seen), "face runs", len(face.model.seen), "drawn", int((pose > 0).any(-1).sum()))
    return cases


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    openpose = load_open_pose()
    os.makedirs(OUT, exist_ok=True)
    networks, hand_recipe, face_recipe = network_cases(openpose)
    info = {
        "controlnet_aux": "0.0.10",
        "torch": torch.__version__,
        "recipes": {},
        "draws": draw_cases(openpose.util),
        "networks": networks,
        "cases": pose_cases(openpose),
    }
    for name, r in [("hand", hand_recipe), ("face", face_recipe)]:
        with gzip.GzipFile(os.path.join(OUT, f"{name}.recipe.json.gz"), "wb", mtime=0) as f:
            f.write(json.dumps(r, separators=(",", ":")).encode())
        info["recipes"][name] = {"safetensors_sha256": hashlib.sha256(sc.to_bytes(r)).hexdigest(), "parameters": sum(math.prod(e[2]) for e in r["tensors"])}
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(info, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
