"""Reference fixtures for --control type=dwpose: sd-webui-controlnet's dw_openpose_full on tiny stand-ins of DWPose's
two ONNX models (yzd-v/DWPose's yolox_l.onnx and dw-ll_ucoco_384.onnx).

Run: /opt/diffuse-venv/bin/python tools/make_dwpose_refs.py   (writes test/fixtures/dwpose/)

Which reference: controlnet_aux 0.0.10's DWposeDetector runs DWPose through mmdet/mmpose (PyTorch checkpoints and
configs), not the ONNX models; sd-webui-controlnet (annotator/openpose: cv_ox_det.py, cv_ox_pose.py, wholebody.py,
util.py) runs the ONNX models, so diffuse follows it. The extension cannot be imported without AUTOMATIC1111; the
PyPI package dwpose 1.0.1 (tools/requirements-nodeps.txt) carries the same files (cv_ox_det.py, cv_ox_pose.py and
util.py's drawing equal sd-webui-controlnet's but for a dtype argument that defaults to float32; checked with diff),
so its functions are the reference here: inference_detector, inference_pose, Wholebody.format_result and util's
draw_bodypose / draw_handpose / draw_facepose, with onnxruntime sessions (both files accept them).
What is written out below, as sd-webui-controlnet has it: Wholebody.__call__'s neck and index mapping (dwpose 1.0.1
also returns nothing when the detector's boxes all fail its last filter, where the extension runs the pose model on
the whole picture: the 'quiet' case), draw_poses, and run_model's edge padding to multiples of 64 and crop.

The stand-in models are elementwise arithmetic on exact quantities, so onnxruntime in Python and in Node give the
same outputs bit for bit:
  * detector.onnx: input [1, 3, 640, 640] -> output [1, 8400, 85]: for strides 8, 16 and 32 the picture averaged
    over stride x stride cells (integer sums over a power of two: exact), each cell's 85 values a + b R + c G + d B
    (Mul then Add, one rounding each), channels 4..84 (objectness, classes) clipped to [0, 1];
  * pose.onnx: input [N, 3, 384, 288] -> simcc_x [N, 133, 576], simcc_y [N, 133, 768]: each column's (row's)
    maximum per channel, repeated twice (SimCC's split ratio 2), then a + b R + c G + d B per keypoint.
Weights come from SEED; both files are committed (a few kB).

Cases (each a picture from a recipe the test rebuilds: a gradient with filled rectangles):
  * people: boxes found, several people, bodies, hands and faces drawn;
  * wide: a picture wider than 640 (the letterbox shrinks it with INTER_LINEAR);
  * quiet: boxes found but none passes the last filter (score > 0.3, class 0): the pose model on the whole picture.
Each records the detector's input SHA-256, the boxes, the pose model's input SHA-256, every keypoint's (x, y, score) (their float64 bytes' SHA-256)
and the map's SHA-256 (and how many of its pixels are drawn).

cv-ops.json: the OpenCV calls on their own, on seeded pictures (tools/make_cv_resize_u8_refs.seeded_picture, which
test/helpers/seeded-picture.ts rebuilds): cv2.resize INTER_LINEAR up and down, to every width 1..8 and at exactly
half size (INTER_AREA's path), and cv2.getAffineTransform + cv2.warpAffine INTER_LINEAR of float32 point triples (the
crops' form, rotated ones, boxes past the picture's edges): the matrices as float64 and each output's SHA-256.
"""

import hashlib
import importlib
import importlib.util
import json
import os
import sys
import types

import cv2
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "dwpose")
SEED = 17


def load_dwpose():
    """dwpose 1.0.1's modules without its __init__ (which imports the hand network and scikit-image)."""
    if "dwpose" not in sys.modules:
        spec = importlib.util.find_spec("dwpose")
        package = types.ModuleType("dwpose")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["dwpose"] = package
    det = importlib.import_module("dwpose.dw_onnx.cv_ox_det")
    pose = importlib.import_module("dwpose.dw_onnx.cv_ox_pose")
    util = importlib.import_module("dwpose.util")
    wholebody = importlib.import_module("dwpose.wholebody")
    return det, pose, util, wholebody


def picture(width: int, height: int, rects: list) -> np.ndarray:
    """The recipe the test rebuilds: R = 128 x / (w - 1), G = 255 y / (h - 1), B = (x + 2 y) mod 256 (integer
    division), then each rectangle [x0, y0, x1, y1, r, g, b] (x1, y1 excluded) filled with its colour plus
    ((x x + 3 y y + x y) mod 23) on every channel, so that no two cells pool to the same colour."""
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack([(128 * x) // max(width - 1, 1), (255 * y) // max(height - 1, 1), (x + 2 * y) % 256], -1)
    for x0, y0, x1, y1, r, g, b in rects:
        ripple = ((x * x + 3 * y * y + x * y) % 23)[y0:y1, x0:x1]
        img[y0:y1, x0:x1] = np.stack([r + ripple, g + ripple, b + ripple], -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def affine(nodes, x, weights, name):
    """name = a + b R + c G + d B over x's three channels (Mul, then Add from a, in this order), with the
    initialisers `weights`_w0..3 (a, b, c, d) broadcast over the keypoints or cells."""
    terms = []
    nodes.append(helper.make_node("Split", [x], [f"{name}_ch{c}" for c in range(3)], axis=1))
    for c in range(3):
        nodes.append(helper.make_node("Mul", [f"{name}_ch{c}", f"{weights}_w{c + 1}"], [f"{name}_m{c}"]))
        terms.append(f"{name}_m{c}")
    nodes.append(helper.make_node("Add", [f"{weights}_w0", terms[0]], [f"{name}_a0"]))
    nodes.append(helper.make_node("Add", [f"{name}_a0", terms[1]], [f"{name}_a1"]))
    nodes.append(helper.make_node("Add", [f"{name}_a1", terms[2]], [name]))


def model(nodes, name, inputs, outputs, inits) -> onnx.ModelProto:
    for i, node in enumerate(nodes):
        node.name = f"{node.op_type}_{i}"
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8, producer_name="make_dwpose_refs")


def weight_inits(name, weights, shape):
    return [numpy_helper.from_array(weights[k].reshape(shape).astype(np.float32), f"{name}_w{k}") for k in range(4)]


def detector_graph(rng) -> onnx.ModelProto:
    w = np.zeros((4, 85), np.float32)
    # Offsets (cells), log sizes, objectness and the person class: chosen, the scores inside (0, 1) where they are
    # not 0 (clipping at 1 would make equal scores); the other 79 classes random, a few above the 0.1 of multiclass_nms.
    w[:, 0] = [0.3, 0.001, 0.0005, 0.0]
    w[:, 1] = [0.4, 0.0, -0.0003, 0.0007]
    w[:, 2] = [3.0, 0.002, 0.0, -0.001]
    w[:, 3] = [3.3, 0.0, 0.001, 0.0]
    w[:, 4] = [-0.1, 0.004, -0.002, -0.001]
    w[:, 5] = [0.2, 0.0018, 0.0, -0.001]
    w[:, 6:] = rng.uniform(-0.001, 0.001, (4, 79)).astype(np.float32)
    w[0, 6:] = rng.uniform(-0.3, 0.05, 79).astype(np.float32)
    w = w.astype(np.float32)
    nodes, inits = [], weight_inits("cell", w, (1, 85, 1, 1))
    levels = []
    for stride in (8, 16, 32):
        nodes.append(helper.make_node("AveragePool", ["input"], [f"pool{stride}"], kernel_shape=[stride, stride], strides=[stride, stride]))
        affine(nodes, f"pool{stride}", "cell", f"cells{stride}")
        nodes.append(helper.make_node("Reshape", [f"cells{stride}", "flat"], [f"flat{stride}"]))
        levels.append(f"flat{stride}")
    inits.append(numpy_helper.from_array(np.array([1, 85, -1], np.int64), "flat"))
    nodes.append(helper.make_node("Concat", levels, ["cells"], axis=2))
    nodes.append(helper.make_node("Transpose", ["cells"], ["rows"], perm=[0, 2, 1]))
    inits += [numpy_helper.from_array(np.array([v], np.int64), n) for n, v in (("c0", 0), ("c4", 4), ("c85", 85), ("axis2", 2))]
    nodes.append(helper.make_node("Slice", ["rows", "c0", "c4", "axis2"], ["boxes"]))
    nodes.append(helper.make_node("Slice", ["rows", "c4", "c85", "axis2"], ["raw_scores"]))
    inits += [numpy_helper.from_array(np.array(0, np.float32), "zero"), numpy_helper.from_array(np.array(1, np.float32), "one")]
    nodes.append(helper.make_node("Clip", ["raw_scores", "zero", "one"], ["scores"]))
    nodes.append(helper.make_node("Concat", ["boxes", "scores"], ["output"], axis=2))
    return model(nodes, "yolox_stand_in", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 640, 640])],
                 [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 8400, 85])], inits)


def pose_graph(rng) -> onnx.ModelProto:
    nodes, inits = [], []
    outputs = []
    for axis, length, name in ((2, 288, "simcc_x"), (3, 384, "simcc_y")):
        w = np.stack([rng.uniform(-0.6, 0.4, 133), rng.uniform(-0.6, 0.6, 133), rng.uniform(-0.6, 0.6, 133), rng.uniform(-0.6, 0.6, 133)]).astype(np.float32)
        inits += weight_inits(name, w, (1, 133, 1))
        nodes.append(helper.make_node("ReduceMax", ["input"], [f"{name}_max"], axes=[axis], keepdims=0))
        nodes.append(helper.make_node("Unsqueeze", [f"{name}_max", "last"], [f"{name}_col"]))
        nodes.append(helper.make_node("Concat", [f"{name}_col", f"{name}_col"], [f"{name}_pair"], axis=3))
        inits.append(numpy_helper.from_array(np.array([0, 3, 2 * length], np.int64), f"{name}_shape"))
        nodes.append(helper.make_node("Reshape", [f"{name}_pair", f"{name}_shape"], [f"{name}_twice"]))
        affine(nodes, f"{name}_twice", name, name)
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", 133, 2 * length]))
    inits.append(numpy_helper.from_array(np.array([3], np.int64), "last"))
    return model(nodes, "rtmpose_stand_in", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 384, 288])], outputs, inits)


def sha(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


class Recorder:
    """onnxruntime sessions that record the inputs the reference feeds them."""

    def __init__(self, path):
        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.inputs = []

    def get_inputs(self):
        return self.session.get_inputs()

    def run(self, names, feed):
        self.inputs.append(next(iter(feed.values())))
        return self.session.run(names, feed)


# Recorder's class name must contain InferenceSession for cv_ox_det/cv_ox_pose to call it as one.
RecordingInferenceSession = type("RecordingInferenceSession", (Recorder,), {})


def wholebody(det_mod, pose_mod, det, pose, img):
    """sd-webui-controlnet's Wholebody.__call__: boxes, keypoints of each, the neck (mean of the shoulders, score 1
    when both shoulders score above 0.3, else 0) inserted at 17, mmpose's order moved to OpenPose's."""
    boxes = det_mod.inference_detector(det, img)
    if boxes is None:
        return None, None
    keypoints, scores = pose_mod.inference_pose(pose, boxes, img)
    info = np.concatenate((keypoints, scores[..., None]), axis=-1)
    neck = np.mean(info[:, [5, 6]], axis=1)
    neck[:, 2:4] = np.logical_and(info[:, 5, 2:4] > 0.3, info[:, 6, 2:4] > 0.3).astype(int)
    info = np.insert(info, 17, neck, axis=1)
    mmpose_idx = [17, 6, 8, 10, 7, 9, 12, 14, 16, 13, 15, 2, 1, 4, 3]
    openpose_idx = [1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17]
    info[:, openpose_idx] = info[:, mmpose_idx]
    return boxes, info


def draw_poses(util, poses, height, width):
    canvas = np.zeros((height, width, 3), np.uint8)
    for p in poses:
        canvas = util.draw_bodypose(canvas, p.body.keypoints)
        canvas = util.draw_handpose(canvas, p.left_hand)
        canvas = util.draw_handpose(canvas, p.right_hand)
        canvas = util.draw_facepose(canvas, p.face)
    return canvas


def pad64(x: int) -> int:
    return int(np.ceil(float(x) / 64.0) * 64 - x)


# Sides that are multiples of 64 (no edge padding, whose repeated samples would pool to equal scores: NMS's order of
# equal scores is numpy's argsort's), but for `padded`.
CASES = [
    {"name": "people", "width": 192, "height": 128, "rects": [[20, 30, 70, 120, 200, 30, 40], [110, 20, 180, 125, 220, 60, 20], [80, 90, 130, 128, 40, 200, 220]]},
    {"name": "wide", "width": 704, "height": 128, "rects": [[100, 10, 160, 110, 210, 40, 30], [400, 5, 520, 115, 190, 20, 60]]},
    {"name": "quiet", "width": 128, "height": 64, "rects": [[0, 0, 128, 64, 150, 60, 60]]},
    {"name": "none", "width": 64, "height": 64, "rects": [[0, 0, 64, 64, 10, 200, 200]]},
]


def cv_ops() -> dict:
    from make_cv_resize_u8_refs import seeded_picture

    resizes = []
    sizes = [(50, 37, 125, 92), (64, 48, 160, 120), (40, 30, 33, 25), (200, 150, 640, 480), (704, 128, 640, 116), (90, 60, 45, 30), (3, 2, 11, 7)]
    sizes += [(23, 17, w, 9) for w in range(1, 9)]
    for i, (w, h, tw, th) in enumerate(sizes):
        pic = seeded_picture(w, h, 300 + i, "photo" if i % 2 else "noise")
        resizes.append({"picture": [w, h, 300 + i, "photo" if i % 2 else "noise"], "size": [tw, th], "sha256": sha(cv2.resize(pic, (tw, th), interpolation=cv2.INTER_LINEAR))})
    warps = []
    rng = np.random.default_rng(SEED + 1)
    pic = seeded_picture(90, 70, 400, "photo")
    triples = [[[45.0, 35.0], [45.0, 5.0], [15.0, 5.0]], [[10.5, 60.25], [10.5, -20.0], [-70.25, -20.0]], [[120.0, 90.0], [120.0, 30.0], [60.0, 30.0]]]
    triples += [rng.uniform(-40, 130, (3, 2)).tolist() for _ in range(5)]
    for src in triples:
        src = np.float32(src)
        dst = np.float32([[144, 192], [144, 48], [0, 48]])
        m = cv2.getAffineTransform(src, dst)
        warps.append({"src": src.astype(np.float64).tolist(), "matrix": m.tolist(), "sha256": sha(cv2.warpAffine(pic, m, (288, 384), flags=cv2.INTER_LINEAR))})
    return {"picture": [90, 70, 400, "photo"], "resizes": resizes, "warps": warps}


def main() -> None:
    with open(os.path.join(OUT, "cv-ops.json"), "w") as f:
        json.dump(cv_ops(), f, separators=(",", ":"))
        f.write("\n")
    det_mod, pose_mod, util, wb = load_dwpose()
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(SEED)
    det_path, pose_path = os.path.join(OUT, "detector.onnx"), os.path.join(OUT, "pose.onnx")
    onnx.save(detector_graph(rng), det_path)
    onnx.save(pose_graph(rng), pose_path)
    results = []
    for case in CASES:
        img = picture(case["width"], case["height"], case["rects"])
        h, w = img.shape[:2]
        padded = np.pad(img, [[0, pad64(h)], [0, pad64(w)], [0, 0]], mode="edge")
        det = RecordingInferenceSession(det_path)
        pose = RecordingInferenceSession(pose_path)
        boxes, info = wholebody(det_mod, pose_mod, det, pose, padded.copy())
        poses = wb.Wholebody.format_result(info)
        canvas = draw_poses(util, poses, padded.shape[0], padded.shape[1])[:h, :w]
        scores = [] if info is None else info[..., 2]
        results.append({
            **case,
            "detectorInput": sha(det.inputs[0]),
            "boxes": None if boxes is None else np.asarray(boxes, np.float64).tolist(),
            "poseInput": [sha(x) for x in pose.inputs],
            # float64 as the reference computes them, little-endian, people x 134 x (x, y, score).
            "keypoints": None if info is None else sha(np.asarray(info, "<f8")),
            "people": len(poses),
            "shown": int(np.sum(np.asarray(scores) >= 0.3)),
            "map": sha(canvas),
            "drawn": int((canvas != 0).any(-1).sum()),
        })
        print(case["name"], "boxes", None if boxes is None else len(boxes), "people", len(poses), "keypoints shown", results[-1]["shown"], "drawn samples", int((canvas != 0).any(-1).sum()))
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"reference": "sd-webui-controlnet dw_openpose_full via dwpose 1.0.1's cv_ox_det/cv_ox_pose/util", "onnxruntime": ort.__version__, "opencv": cv2.__version__, "numpy": np.__version__, "cases": results}, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
