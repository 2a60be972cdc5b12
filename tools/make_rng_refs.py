"""Reference noise for src/rng: writes test/fixtures/rng/{torch_cpu_avx2,torch_cpu_default,philox}.json.

    /opt/diffuse-venv/bin/python tools/make_rng_refs.py

- torch_cpu_avx2.json: real torch.randn(n, generator=torch.Generator().manual_seed(seed)) on this
  machine. x86-64 CPUs with AVX2 or AVX-512 both run torch's AVX2 normal kernel (there is no
  AVX-512 build of it); the script refuses to run on other CPUs.
- torch_cpu_default.json: the same in a subprocess with ATEN_CPU_CAPABILITY=default, i.e. the
  scalar kernel that CPUs without AVX2 (and ARM) run, calling glibc's logf/sincosf.
- philox.json: our own numpy implementation of AUTOMATIC1111's "NV" source (modules/rng_philox.py),
  checked here against the values printed in that module's docstring (to 5e-7 only: those are
  torch's CUDA values, which A1111's float64 evaluation itself reproduces only that closely).

Every value is stored as its float32 bit pattern (8 hex digits, concatenated per call) so tests
compare bit for bit; large calls store the sha256 of their little-endian float32 bytes plus the
first and last 8 values.
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

OUT_DIR = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "rng"

SEEDS = [0, 1, 42, 1234, 2**31 - 1, 2**32 - 1, 2**32, 2**53 + 1, 2**64 - 1]
SIZES = [1, 2, 3, 15, 16, 17, 31, 32, 33, 64, 4 * 8 * 8, 4 * 64 * 64]
STORE_ALL_UP_TO = 4096  # calls of more values are stored as a hash
SEQUENCES = [
    [4 * 8 * 8, 3, 4 * 8 * 8],  # initial latents, a small draw, per-step noise
    [1, 4 * 8 * 8, 1],  # torch caches the second normal of a pair across a normal_fill call
    [15, 15, 2],
    [3, 16, 1, 17, 5, 33, 7],
    [4 * 64 * 64, 4 * 64 * 64, 4 * 64 * 64],  # a diffusers txt2img: latents, then ancestral noise
    [4 * 128 * 128],  # the size of the speed check
]
SEQUENCE_SEEDS = [42, 2**32 - 1, 2**64 - 1]


def encode_call(values: np.ndarray) -> dict:
    values = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    bits = values.view(np.uint32)
    call: dict = {"n": int(values.size)}
    if values.size <= STORE_ALL_UP_TO:
        call["bits"] = "".join(f"{b:08x}" for b in bits)
    else:
        call["sha256"] = hashlib.sha256(values.astype("<f4").tobytes()).hexdigest()
        call["head"] = "".join(f"{b:08x}" for b in bits[:8])
        call["tail"] = "".join(f"{b:08x}" for b in bits[-8:])
    return call


def cases(randn_factory, seeds, sequence_seeds, hashed=True) -> list:
    """randn_factory(seed) -> function n -> float32 array continuing one generator.
    hashed=False leaves out the calls too large to store value by value."""
    fits = lambda ns: hashed or max(ns) <= STORE_ALL_UP_TO
    out = []
    for seed in seeds:
        for n in filter(lambda n: fits([n]), SIZES):
            draw = randn_factory(seed)
            out.append({"seed": str(seed), "calls": [encode_call(draw(n))]})
    for seed in sequence_seeds:
        for seq in filter(fits, SEQUENCES):
            draw = randn_factory(seed)
            out.append({"seed": str(seed), "calls": [encode_call(draw(n)) for n in seq]})
    return out


def write(name: str, payload: dict) -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / name
    path.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {path} ({path.stat().st_size} bytes)")


# ---------------------------------------------------------------- torch CPU


def torch_factory(seed):
    import torch

    g = torch.Generator(device="cpu").manual_seed(seed)
    return lambda n: torch.randn(n, generator=g, dtype=torch.float32).numpy()


def torch_refs(kernel: str) -> None:
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    if kernel == "avx2" and capability not in ("AVX2", "AVX512"):
        sys.exit(f"the avx2 fixture needs an x86-64 CPU with AVX2; torch reports {capability}")
    source = f"torch {torch.__version__} CPU generator, normal kernel '{kernel}' (cpu capability {capability})"
    if kernel == "avx2":
        # torch takes negative seeds in two's complement: -1 must equal 2**64 - 1.
        payload = {"source": source, "cases": cases(torch_factory, SEEDS + [-1], SEQUENCE_SEEDS)}
    else:
        # Only approximated (glibc's logf/sincosf are not correctly rounded), so every value is
        # stored for the test to count differences, with one longer run to measure their rate.
        fixture_cases = cases(torch_factory, [0, 42], [42], hashed=False)
        fixture_cases.append({"seed": "7", "calls": [encode_call(torch_factory(7)(STORE_ALL_UP_TO))]})
        payload = {"source": source, "cases": fixture_cases}
    write(f"torch_cpu_{kernel}.json", payload)


# ---------------------------------------------------------------- Philox (A1111 "NV")

PHILOX_MUL = (np.uint64(0xD2511F53), np.uint64(0xCD9E8D57))
PHILOX_KEY_STEP = (np.uint64(0x9E3779B9), np.uint64(0xBB67AE85))
LOW32 = np.uint64(0xFFFFFFFF)
# A1111 scales by float32 constants; float32(2.3283064e-10) is exactly 2^-32.
U_SCALE = float(np.float32(2.3283064e-10))
V_SCALE = float(np.float32(2.3283064e-10 * 6.2831855))


def philox4x32_10(counter: list, key: list) -> list:
    """Philox4x32 with 10 rounds on uint64 arrays that hold 32-bit words."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for round_index in range(10):
        if round_index:
            k0 = (k0 + PHILOX_KEY_STEP[0]) & LOW32
            k1 = (k1 + PHILOX_KEY_STEP[1]) & LOW32
        prod0 = c0 * PHILOX_MUL[0]  # < 2^64: exact in uint64
        prod1 = c2 * PHILOX_MUL[1]
        c0, c1, c2, c3 = (prod1 >> np.uint64(32)) ^ c1 ^ k0, prod1 & LOW32, (prod0 >> np.uint64(32)) ^ c3 ^ k1, prod0 & LOW32
    return [c0, c1, c2, c3]


def philox_factory(seed):
    state = {"offset": 0}
    key = [np.uint64(seed & 0xFFFFFFFF), np.uint64(seed >> 32)]

    def draw(n):
        index = np.arange(n, dtype=np.uint64)
        zeros = np.zeros(n, dtype=np.uint64)
        counter = [zeros + np.uint64(state["offset"]), zeros, index, zeros]
        state["offset"] += 1
        word0, word1, _, _ = philox4x32_10(counter, key)
        # A1111 multiplies uint32 arrays by float32 arrays, which numpy evaluates in float64.
        u = word0.astype(np.float64) * U_SCALE + U_SCALE / 2
        v = word1.astype(np.float64) * V_SCALE + V_SCALE / 2
        return (np.sqrt(-2.0 * np.log(u)) * np.sin(v)).astype(np.float32)

    return draw


# Printed in the docstring of A1111's modules/rng_philox.py: Generator(seed=0).randn(shape=(3, 4)).
# These are torch's CUDA values; the module's own float64 evaluation reproduces them to ~3e-7.
DOCSTRING_TOLERANCE = 5e-7
A1111_DOCSTRING_SEED0 = [
    -0.92466259, -0.42534415, -2.6438457, 0.14518388,
    -0.12086647, -0.57972564, -0.62285122, -0.32838709,
    -1.07454231, -0.36314407, -1.67105067, 2.26550497,
]


def philox_refs() -> None:
    check = philox_factory(0)(12).astype(np.float64)
    err = np.abs(check - np.array(A1111_DOCSTRING_SEED0)).max()
    assert err < DOCSTRING_TOLERANCE, f"philox implementation disagrees with A1111's docstring by {err}"
    payload = {
        "source": f"tools/make_rng_refs.py numpy {np.__version__} implementation of A1111 modules/rng_philox.py",
        "docstring_seed0_3x4": A1111_DOCSTRING_SEED0,
        "docstring_tolerance": DOCSTRING_TOLERANCE,
        "cases": cases(philox_factory, SEEDS, SEQUENCE_SEEDS),
    }
    write("philox.json", payload)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--torch-kernel":
        torch_refs(sys.argv[2])
        return
    if "ATEN_CPU_CAPABILITY" in os.environ:
        sys.exit("unset ATEN_CPU_CAPABILITY: the script chooses the kernel of each fixture itself")
    torch_refs("avx2")
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default")
    subprocess.run([sys.executable, __file__, "--torch-kernel", "default"], env=env, check=True)
    philox_refs()


if __name__ == "__main__":
    main()
