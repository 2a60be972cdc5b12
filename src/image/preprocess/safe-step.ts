// controlnet_aux's and sd-webui-controlnet's util.safe_step(x, step=2) on one float32 value, as the "safe" soft-edge
// modules (softedge_hedsafe, softedge_pidisafe) quantise their edge before making it 8-bit:
// float32(int32(float32(x) * 3)) / 2, in float32, so that edge * 255 lands on 0, 127(.5) or 255.

const f = Math.fround;

export function safeStep(x: number): number {
  return f(Math.trunc(f(f(x) * 3)) / 2);
}
