"""References for `diffuse embed-train` (src/train/): textual inversion in torch on the tiny-sd weights.

Usage: nice /opt/diffuse-venv/bin/python tools/make_train_refs.py
Writes test/fixtures/train/: three small training pictures (images/), refs.json.gz and .bin arrays.
Deterministic: fixed seeds, single-threaded torch.

The models are rebuilt from tools/fixtures_models.py with the seeds the ONNX fixtures were exported from (the
script checks each against its ONNX file first). The training body is diffusers' examples/textual_inversion/
textual_inversion.py: the placeholder tokens added to the CLIPTokenizer, their rows initialised from the
initializer token, AdamW over the token embedding with every other row restored after each step, get_scheduler's
rate, VAE latent_dist sample x scaling factor, DDPMScheduler.add_noise, F.mse_loss against the noise, the loss
divided by the accumulation steps. Its random draws are diffuse's stream (src/train/draws.ts) reproduced with
torch.Generator calls in the same order: per item randperm (per epoch) / randint (template) / rand (flip), per
batch randn (the VAE sample's eps), randn (noise), randint (timesteps).

Cases:
- schedules: get_scheduler's rate per step for each schedule, with and without warmup;
- adamw: torch.optim.AdamW's parameter after six steps of given gradients and rates;
- draws: the first batches of the stream (image, template, flip, timesteps, the first eps and noise values);
- gradient: one batch of two at the initial vectors: loss and d loss / d placeholder rows (torch autograd);
- curve: a 200-step run (object templates, flips, centre crop, batch 1, accumulation 2, cosine rate with warmup):
  the loss of every step and the final vectors.
"""
from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from diffusers.optimization import get_scheduler
from PIL import Image
from transformers import CLIPTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fixtures_models as models  # noqa: E402
from fixtures_io import RefWriter  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "test" / "fixtures"
OUT = FIXTURES / "train"
TINY = FIXTURES / "tiny-sd"

# diffusers' imagenet_templates_small (src/train/templates.ts has the same list).
OBJECT_TEMPLATES = [
    "a photo of a {}", "a rendering of a {}", "a cropped photo of the {}", "the photo of a {}", "a photo of a clean {}",
    "a photo of a dirty {}", "a dark photo of the {}", "a photo of my {}", "a photo of the cool {}", "a close-up photo of a {}",
    "a bright photo of the {}", "a cropped photo of a {}", "a photo of the {}", "a good photo of the {}", "a photo of one {}",
    "a close-up photo of the {}", "a rendition of the {}", "a photo of the clean {}", "a rendition of a {}", "a photo of a nice {}",
    "a good photo of a {}", "a photo of the nice {}", "a photo of the small {}", "a photo of the weird {}", "a photo of the large {}",
    "a photo of a cool {}", "a photo of a small {}",
]

TOKEN = "<tiny-cat>"
INIT_WORD = "cat"
VECTORS = 2
RESOLUTION = 32


def make_images(out: Path) -> list[Path]:
    """Three pictures of mixed sizes and modes (RGB, RGBA, grey): smooth shapes plus a little noise."""
    out.mkdir(parents=True)
    rng = np.random.default_rng(1234)
    specs = [("a-rgb.png", 40, 36, "RGB"), ("b-rgba.png", 32, 32, "RGBA"), ("c-grey.png", 50, 30, "L")]
    paths = []
    for name, w, h, mode in specs:
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([128 + 100 * np.sin(x / (3 + i) + y / (5 + i)) for i in range(4)], axis=-1)
        pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels[..., :3], "RGB") if mode != "RGBA" else Image.fromarray(pixels, "RGBA")
        if mode == "L":
            image = image.convert("L")
        path = out / name
        image.save(path)
        paths.append(path)
    return paths


def prepare(path: Path, flip: bool, center_crop: bool) -> torch.Tensor:
    """TextualInversionDataset.__getitem__'s picture, with the flip decided by the stream."""
    image = Image.open(path)
    if not image.mode == "RGB":
        image = image.convert("RGB")
    img = np.array(image).astype(np.uint8)
    if center_crop:
        crop = min(img.shape[0], img.shape[1])
        h, w = img.shape[0], img.shape[1]
        img = img[(h - crop) // 2 : (h + crop) // 2, (w - crop) // 2 : (w + crop) // 2]
    image = Image.fromarray(img).resize((RESOLUTION, RESOLUTION), resample=Image.Resampling.BICUBIC)
    if flip:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    img = (np.array(image).astype(np.uint8) / 127.5 - 1.0).astype(np.float32)
    return torch.from_numpy(img).permute(2, 0, 1)


class Draws:
    """diffuse's training stream (src/train/draws.ts) as torch calls on one generator."""

    def __init__(self, seed: int, images: int, templates: int, flip_p: float, latent_shape: tuple[int, ...]) -> None:
        self.g = torch.Generator().manual_seed(seed)
        self.images, self.templates, self.flip_p, self.latent_shape = images, templates, flip_p, latent_shape
        self.order: list[int] = []
        self.position = 0

    def next(self, batch: int) -> dict[str, object]:
        items = []
        for _ in range(batch):
            if self.position >= len(self.order):
                self.order = torch.randperm(self.images, generator=self.g).tolist()
                self.position = 0
            image = self.order[self.position]
            self.position += 1
            template = int(torch.randint(0, self.templates, (1,), generator=self.g)[0])
            flip = bool(torch.rand(1, generator=self.g)[0] < self.flip_p)
            items.append((image, template, flip))
        eps = torch.randn((batch, *self.latent_shape), generator=self.g)
        noise = torch.randn((batch, *self.latent_shape), generator=self.g)
        timesteps = torch.randint(0, 1000, (batch,), generator=self.g)
        return {"items": items, "eps": eps, "noise": noise, "timesteps": timesteps}


class Setup:
    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.tokenizer = CLIPTokenizer.from_pretrained(str(TINY / "tokenizer"))
        tokens = [TOKEN] + [f"{TOKEN}_{i}" for i in range(1, VECTORS)]
        if self.tokenizer.add_tokens(tokens) != VECTORS:
            raise AssertionError("placeholder tokens already exist")
        init_ids = self.tokenizer.encode(INIT_WORD, add_special_tokens=False)
        assert len(init_ids) == 1
        self.placeholder_ids = self.tokenizer.convert_tokens_to_ids(tokens)
        self.placeholder_string = " ".join(self.tokenizer.convert_ids_to_tokens(self.placeholder_ids))
        self.text_encoder = models.build_text_encoder()
        check_forward(self.text_encoder, self.tokenizer)
        self.text_encoder.resize_token_embeddings(len(self.tokenizer))
        embeds = self.text_encoder.get_input_embeddings().weight.data
        with torch.no_grad():
            for i in self.placeholder_ids:
                embeds[i] = embeds[init_ids[0]].clone()
        self.vae = models.build_vae()
        self.unet = models.build_unet(in_channels=4, seed=models.UNET_SEED)
        self.noise_scheduler = DDPMScheduler.from_config(models.SD15_SCHEDULER_CONFIG)
        for m in (self.vae, self.unet):
            m.requires_grad_(False)
        self.text_encoder.text_model.encoder.requires_grad_(False)
        self.text_encoder.text_model.final_layer_norm.requires_grad_(False)
        self.text_encoder.text_model.embeddings.position_embedding.requires_grad_(False)

    def ids(self, template: int) -> torch.Tensor:
        text = OBJECT_TEMPLATES[template].format(self.placeholder_string)
        return self.tokenizer(text, padding="max_length", truncation=True, max_length=self.tokenizer.model_max_length, return_tensors="pt").input_ids[0]

    def batch(self, draw: dict[str, object], center_crop: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        items = draw["items"]
        pixels = torch.stack([prepare(self.paths[i], flip, center_crop) for i, _t, flip in items])
        ids = torch.stack([self.ids(t) for _i, t, _f in items])
        with torch.no_grad():
            dist = self.vae.encode(pixels).latent_dist
            latents = (dist.mean + dist.std * draw["eps"]) * self.vae.config.scaling_factor
        return ids, latents, draw["noise"], draw["timesteps"]

    def loss(self, ids: torch.Tensor, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
        hidden = self.text_encoder(ids)[0]
        pred = self.unet(noisy, timesteps, hidden).sample
        return F.mse_loss(pred.float(), noise.float(), reduction="mean")

    def learned(self) -> torch.Tensor:
        return self.text_encoder.get_input_embeddings().weight.data[self.placeholder_ids].clone()


def check_forward(text_encoder, tokenizer) -> None:
    """The rebuilt text encoder is the fixture's (same weights)."""
    ids = tokenizer("a photo of a cat", padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        want = text_encoder(ids).last_hidden_state.numpy()
    session = ort.InferenceSession(str(TINY / "text_encoder" / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(["last_hidden_state"], {"input_ids": ids.int().numpy()})[0]
    err = float(np.abs(got - want).max() / np.abs(want).max())
    if err > 1e-5:
        raise AssertionError(f"text encoder differs from its ONNX fixture by {err:.2e}")


def draws_case() -> dict[str, object]:
    draws = Draws(seed=77, images=3, templates=len(OBJECT_TEMPLATES), flip_p=0.5, latent_shape=(4, 16, 16))
    out = []
    for _ in range(5):
        d = draws.next(2)
        out.append({
            "items": [list(x) for x in d["items"]],
            "timesteps": d["timesteps"].tolist(),
            "eps_head": d["eps"].flatten()[:8].tolist(),
            "noise_tail": d["noise"].flatten()[-8:].tolist(),
        })
    return {"seed": 77, "images": 3, "templates": len(OBJECT_TEMPLATES), "flip_p": 0.5, "latent_size": 4 * 16 * 16, "batches": out}


def gradient_case(writer: RefWriter, setup: Setup) -> dict[str, object]:
    draws = Draws(seed=5, images=3, templates=len(OBJECT_TEMPLATES), flip_p=0.5, latent_shape=(4, 16, 16))
    ids, latents, noise, timesteps = setup.batch(draws.next(2), center_crop=False)
    embedding = setup.text_encoder.get_input_embeddings().weight
    embedding.grad = None
    loss = setup.loss(ids, latents, noise, timesteps)
    loss.backward()
    grad = embedding.grad[setup.placeholder_ids].clone()
    embedding.grad = None
    return {
        "ids": ids.tolist(),
        "timesteps": timesteps.tolist(),
        "latents": writer.array("gradient_latents", latents),
        "noise": writer.array("gradient_noise", noise),
        "vectors": writer.array("gradient_vectors", setup.learned()),
        "loss": float(loss),
        "grad": writer.array("gradient_grad", grad),
    }


def curve_case(writer: RefWriter, setup: Setup, steps: int) -> dict[str, object]:
    settings = {"seed": 42, "batch_size": 1, "gradient_accumulation": 2, "lr": 0.02, "lr_schedule": "cosine", "lr_warmup": 20, "flip_p": 0.5, "center_crop": True, "steps": steps}
    draws = Draws(seed=settings["seed"], images=3, templates=len(OBJECT_TEMPLATES), flip_p=settings["flip_p"], latent_shape=(4, 16, 16))
    embedding = setup.text_encoder.get_input_embeddings()
    orig = embedding.weight.data.clone()
    initial = setup.learned()
    optimizer = torch.optim.AdamW(embedding.parameters(), lr=settings["lr"], betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8)
    scheduler = get_scheduler(settings["lr_schedule"], optimizer=optimizer, num_warmup_steps=settings["lr_warmup"], num_training_steps=steps)
    keep = torch.ones((len(setup.tokenizer),), dtype=torch.bool)
    keep[min(setup.placeholder_ids) : max(setup.placeholder_ids) + 1] = False
    losses = []
    first_ids = None
    for _step in range(steps):
        total = 0.0
        for _micro in range(settings["gradient_accumulation"]):
            ids, latents, noise, timesteps = setup.batch(draws.next(settings["batch_size"]), center_crop=settings["center_crop"])
            if first_ids is None:
                first_ids = ids.tolist()
            loss = setup.loss(ids, latents, noise, timesteps)
            (loss / settings["gradient_accumulation"]).backward()
            total += float(loss)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        with torch.no_grad():
            embedding.weight[keep] = orig[keep]
        losses.append(total / settings["gradient_accumulation"])
    return {
        "settings": settings,
        "token": TOKEN,
        "init_word": INIT_WORD,
        "vectors": VECTORS,
        "first_ids": first_ids,
        "initial": writer.array("curve_initial", initial),
        "losses": losses,
        "final": writer.array("curve_final", setup.learned()),
    }


def schedules_case() -> dict[str, object]:
    """get_scheduler's rate for each step (LambdaLR: the rate optimizer step k uses), base 0.01, 50 steps, warmup 10."""
    out = {}
    for name in ["constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts"]:
        for warmup in (0, 10):
            opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
            sched = get_scheduler(name, optimizer=opt, num_warmup_steps=warmup, num_training_steps=50, num_cycles=2 if name == "cosine_with_restarts" else 1)
            rates = []
            for _ in range(50):
                rates.append(opt.param_groups[0]["lr"])
                opt.step()
                sched.step()
            out[f"{name}/{warmup}"] = rates
    return out


def adamw_case(writer: RefWriter) -> dict[str, object]:
    """torch.optim.AdamW on a 2x32 parameter for 6 steps with given gradients and rates (weight decay 0.01)."""
    g = torch.Generator().manual_seed(9)
    param = torch.nn.Parameter(torch.randn((2, 32), generator=g))
    initial = param.detach().clone()
    opt = torch.optim.AdamW([param], lr=1.0, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8)
    rates = [5e-3, 5e-3, 1e-2, 2e-2, 1e-3, 5e-3]
    grads = []
    for i, rate in enumerate(rates):
        opt.param_groups[0]["lr"] = rate
        grad = torch.randn((2, 32), generator=g) * (10.0 ** (i - 3))
        grads.append(grad)
        param.grad = grad.clone()
        opt.step()
    return {"rates": rates, "initial": writer.array("adamw_initial", initial), "grads": writer.array("adamw_grads", torch.stack(grads)), "final": writer.array("adamw_final", param.detach())}


def main() -> None:
    torch.set_num_threads(1)
    writer = RefWriter(OUT)
    paths = make_images(OUT / "images")
    setup = Setup(paths)
    refs = {
        "token": TOKEN,
        "init_word": INIT_WORD,
        "vectors": VECTORS,
        "resolution": RESOLUTION,
        "placeholder_ids": setup.placeholder_ids,
        "draws": draws_case(),
        "schedules": schedules_case(),
        "adamw": adamw_case(writer),
        "gradient": gradient_case(writer, setup),
        "curve": curve_case(writer, setup, steps=200),
    }
    writer.files.add("refs.json.gz")
    with gzip.open(OUT / "refs.json.gz", "wt") as f:
        json.dump(refs, f)
    print(f"loss {refs['curve']['losses'][0]:.5f} -> {refs['curve']['losses'][-1]:.5f}; gradient loss {refs['gradient']['loss']:.6f}")


if __name__ == "__main__":
    main()
