/**
 * `diffuse upscale`'s flags: one table for commander, --help and the README's table
 * (test/readme.test.ts checks every row is there).
 */
export interface UpscaleOptionSpec {
  flags: string;
  description: string;
  default?: string;
}

export const UPSCALE_OPTIONS: readonly UpscaleOptionSpec[] = [
  { flags: '-o, --output <path>', description: 'the .png to write (atomically; the input\'s text chunks are kept, A1111\'s postprocessing chunk added)' },
  { flags: '-m, --model <ref>', description: 'a registry upscaler (diffuse models list) or a .onnx file (Real-ESRGAN family: one RGB picture in, a larger one out)', default: 'realesrgan-x4plus' },
  { flags: '--scale <x>', description: "final size / input size; the model runs while the picture is smaller than the target, then PIL Lanczos resizes it to int(side × x // 8 × 8), as A1111's upscalers do (default: the model's scale)" },
  { flags: '--tile <n>', description: "tile side in input pixels (A1111's ESRGAN tile); 0 runs the whole picture at once", default: '192' },
  { flags: '--tile-overlap <n>', description: "pixels neighbouring tiles share, blended with A1111's linear feather (combine_grid)", default: '8' },
  { flags: '--channel-order <order>', description: "rgb feeds the model RGB (Real-ESRGAN's and ComfyUI's order), bgr flips the channels as A1111 does", default: 'rgb' },
  { flags: '--device <name>', description: 'execution provider: auto, cpu, cuda, webgpu, dml, coreml', default: 'cpu' },
  { flags: '--threads <n>', description: 'ONNX Runtime intra-op threads (default: physical cores)' },
  { flags: '--overwrite', description: 'replace an existing output file' },
  { flags: '--offline', description: 'never touch the network: only upscalers already in the cache' },
  { flags: '-y, --yes', description: 'download a registry upscaler that is not installed without asking' },
  { flags: '-q, --quiet', description: 'no progress on stderr' },
];
