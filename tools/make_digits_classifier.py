"""Train the digit classifier that judges tiny-digits' images, export it to ONNX, and write the held-out digits.

Usage: nice -n 10 /opt/diffuse-venv/bin/python tools/make_digits_classifier.py

A small CNN on the same 32x32 digits the diffusion model is trained on (tools/digits_data.py: same split, so the
held-out digits are unseen by both), with shifts and pixel noise so it reads generated digits that are slightly
off-centre or grainy. The ONNX graph takes what diffuse decodes, RGB [N, 3, 32, 32] in [0, 1], and returns
`logits` [N, 10] and `features` [N, 32] (the penultimate layer, for a Frechet distance between generated and real
digits). Writes assets/tiny-digits-classifier.onnx and test/fixtures/digits/held-out.bin.gz (per image: label byte
then 1024 grey bytes). Fixed seeds, torch 1 thread: a rerun writes the same bytes.
"""
from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

import digits_data as data  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_OUT = REPO_ROOT / "assets" / "tiny-digits-classifier.onnx"
HELD_OUT_OUT = REPO_ROOT / "test" / "fixtures" / "digits" / "held-out.bin.gz"
EPOCHS = 40
SHIFT = 3
NOISE = 0.05


class DigitNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 4 * 4, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = rgb.mean(dim=1, keepdim=True)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.avg_pool2d(F.relu(self.conv3(x)), 2)
        features = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(features), features


def as_input(images: np.ndarray) -> torch.Tensor:
    return torch.tensor(images, dtype=torch.float32)[:, None].expand(-1, 3, -1, -1) / 255.0


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random shifts up to SHIFT pixels (the background is white) and Gaussian pixel noise."""
    padded = F.pad(x, (SHIFT,) * 4, value=1.0)
    out = torch.empty_like(x)
    offsets = torch.randint(0, 2 * SHIFT + 1, (len(x), 2), generator=g)
    for i, (dy, dx) in enumerate(offsets.tolist()):
        out[i] = padded[i, :, dy : dy + data.SIZE, dx : dx + data.SIZE]
    return (out + NOISE * torch.randn(out.shape, generator=g)).clamp(0, 1)


def accuracy(net: DigitNet, x: torch.Tensor, labels: np.ndarray) -> float:
    with torch.no_grad():
        return float((net(x)[0].argmax(1).numpy() == labels).mean())


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    train_images, train_labels, held_images, held_labels = data.load_split()
    x, y = as_input(train_images), torch.tensor(train_labels)
    torch.manual_seed(30)
    net = DigitNet()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(31)
    for epoch in range(EPOCHS):
        net.train()
        for idx in torch.randperm(len(x), generator=g).split(64):
            loss = F.cross_entropy(net(augment(x[idx], g))[0], y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if (epoch + 1) % 10 == 0:
            print(f"epoch {epoch + 1}: train {accuracy(net.eval(), x, train_labels):.4f} held-out {accuracy(net, as_input(held_images), held_labels):.4f}")
    net.eval()
    MODEL_OUT.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        net,
        (as_input(held_images[:1]),),
        str(MODEL_OUT),
        input_names=["image"],
        output_names=["logits", "features"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}, "features": {0: "batch"}},
        opset_version=17,
    )
    check_onnx(net, as_input(held_images))
    HELD_OUT_OUT.parent.mkdir(parents=True, exist_ok=True)
    rows = np.concatenate([held_labels.astype(np.uint8)[:, None], held_images.reshape(len(held_images), -1)], axis=1)
    # mtime 0: the same digits give the same .gz bytes.
    with open(HELD_OUT_OUT, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as gz:
        gz.write(rows.tobytes())
    print(f"held-out accuracy {accuracy(net, as_input(held_images), held_labels):.4f} on {len(held_labels)} digits; "
          f"{MODEL_OUT.stat().st_size / 1e3:.1f} KB classifier, {HELD_OUT_OUT.stat().st_size / 1e3:.1f} KB held-out digits")


def check_onnx(net: DigitNet, x: torch.Tensor) -> None:
    import onnxruntime as ort

    session = ort.InferenceSession(str(MODEL_OUT), providers=["CPUExecutionProvider"])
    logits, features = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        want_logits, want_features = net(x)
    err = max(np.abs(logits - want_logits.numpy()).max(), np.abs(features - want_features.numpy()).max())
    if err > 1e-4:
        raise AssertionError(f"ONNX classifier differs from torch by {err}")


if __name__ == "__main__":
    main()
