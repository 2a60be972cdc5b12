"""Reference numbers for src/schedulers (model, schedules, k-samplers, diffusers equivalence).

k-diffusion 0.1.1.post1 (`pip install k-diffusion==0.1.1.post1 --no-deps`; only sampling.py and
external.py are loaded) and diffusers 0.32.2 run on a deterministic dummy network over 2x4x4x4
float32 latents. Every gaussian a sampler draws comes from a recorded noise pool that the TS test
replays through a NoiseSource, so the comparison does not depend on porting torch's RNG.

Run: /opt/diffuse-venv/bin/python tools/make_sampler_refs.py
Writes: test/fixtures/samplers/schedules.json, test/fixtures/samplers/loops.json
"""

import torch

from sampler_refs_common import load_k_diffusion, write_json
from sampler_refs_loops import all_loop_refs
from sampler_refs_schedules import all_schedule_refs


def main() -> None:
    torch.set_num_threads(1)
    sampling, external = load_k_diffusion()
    write_json("schedules.json", all_schedule_refs(sampling, external))
    write_json("loops.json", all_loop_refs(sampling, external))


if __name__ == "__main__":
    main()
