"""Shared timing harness of the Python peers in the speed benchmark (bench/run.ts runs them, reads their JSON).

Each peer builds its pipeline, wraps the text encoder, UNet and VAE decoder calls with `Stopwatch`es and records
a timestamp at the end of every denoising step; the JSON it prints has the fields bench/run.ts's PeerResult reads.
"""
from __future__ import annotations

import argparse
import functools
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

PROMPT = "a photograph of an astronaut riding a horse"


@dataclass
class Stopwatch:
    """Total seconds spent inside the wrapped callable, and how often it ran."""

    seconds: float = 0.0
    calls: int = 0

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0
                self.calls += 1

        return timed


@dataclass
class StepClock:
    """Durations of the denoising steps, from the end of the previous step (or the first UNet call)."""

    unet: Stopwatch
    ends: list[float] = field(default_factory=list)
    first_unet_start: float | None = None

    def wrap_unet(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        timed = self.unet.wrap(fn)

        def marked(*args: Any, **kwargs: Any) -> Any:
            if self.first_unet_start is None:
                self.first_unet_start = time.perf_counter()
            return timed(*args, **kwargs)

        return marked

    def on_step_end(self, _pipe: Any, _step: int, _t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        self.ends.append(time.perf_counter())
        return kwargs

    def step_seconds(self) -> list[float]:
        if self.first_unet_start is None:
            return []
        marks = [self.first_unet_start, *self.ends]
        return [b - a for a, b in zip(marks, marks[1:])]


def parse_args(description: str, flags: tuple[tuple[str, str], ...] = ()) -> argparse.Namespace:
    """The options every peer takes, plus its own on/off `flags` ((name, help) pairs)."""
    p = argparse.ArgumentParser(description=description)
    for name, help_text in flags:
        p.add_argument(name, action="store_true", help=help_text)
    p.add_argument("--model", required=True)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--height", type=int, default=512)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--cfg", type=float, default=7.5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=42)
    return p.parse_args()


def peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def runtime(*modules: str) -> str:
    """The versions of the libraries that do the arithmetic, e.g. "onnxruntime 1.20.1": results name them per row."""
    import importlib

    return ", ".join(f"{m} {importlib.import_module(m).__version__}" for m in modules)


def emit(tool: str, args: argparse.Namespace, **fields: Any) -> None:
    record = {"tool": tool, "width": args.width, "height": args.height, "steps": args.steps, "cfg": args.cfg,
              "threads": args.threads, "peak_rss_mb": peak_rss_mb(), **fields}
    print("BENCH_JSON " + json.dumps(record), flush=True)
