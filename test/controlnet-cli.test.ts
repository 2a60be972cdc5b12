import { mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { encodePng } from '../src/image/encode-png.js';
import { loadImage } from '../src/image/load-image.js';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { insertPngText } from '../src/image/png-text.js';
import { TINY_SD, diffuse, tempDir } from './helpers/cli.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';
import { assembleModel, type AssembledModel } from './helpers/assemble-model.js';
import { seededPicture } from './helpers/seeded-picture.js';
import { writeDiffusersFolder } from './helpers/synthetic-checkpoint.js';

/** diffuse txt2img/img2img --control: the PNG and A1111's ControlNet entries, --from's hint, depth from DPT, and bad values in one line. */
const cli = suite('diffuse --control');
const PICTURES = join(FIXTURES, 'controlnet-pipeline');
const CONTROLNET = join(FIXTURES, 'tiny-sd-control', 'controlnet');
let model: AssembledModel;
let dir: string;
cli.before(() => {
  model = assembleModel('tiny-sd-control');
  dir = tempDir();
});
cli.after(() => {
  model.remove();
  rmSync(dir, { recursive: true, force: true });
});

const picture = join(PICTURES, 'control.a.png');
const base = (out: string) => ['txt2img', 'a lighthouse', '--model', model.dir, '--steps', '3', '--seed', '5', '-o', out, '--quiet'];

cli('two units write the image with A1111’s ControlNet entries; --from says how to pass them again', () => {
  const out = join(dir, 'two.png');
  const r = diffuse([
    ...base(out),
    '--control', `type=canny,image=${picture},model=${CONTROLNET},weight=0.8,low=50,high=150`,
    '--control', `type=none,image=${join(PICTURES, 'control.b.png')},model=${CONTROLNET},start=0.2,end=0.9,guess,resize=crop-and-resize`,
  ]);
  assert.is(r.status, 0, r.stderr);
  const meta = readGenerationMetadata(readFileSync(out));
  assert.ok(meta.kind === 'a1111', JSON.stringify(meta));
  const extra = meta.parameters.extra;
  assert.match(
    extra['ControlNet 0'] ?? '',
    /^Module: canny, Model: tiny-sd-control \[[0-9a-f]{8}\], Weight: 0\.8, Resize Mode: Just Resize, Low Vram: False, Threshold A: 50\.0, Threshold B: 150\.0, Guidance Start: 0\.0, Guidance End: 1\.0, Pixel Perfect: False, Control Mode: Balanced$/,
  );
  assert.match(
    extra['ControlNet 1'] ?? '',
    /^Module: none, Model: tiny-sd-control \[[0-9a-f]{8}\], Weight: 1\.0, Resize Mode: Crop and Resize, Low Vram: False, Guidance Start: 0\.2, Guidance End: 0\.9, Pixel Perfect: False, Control Mode: ControlNet is more important$/,
  );
  const again = diffuse(['txt2img', '--from', out, '--model', model.dir, '--steps', '1', '-o', join(dir, 'again.png')]);
  assert.is(again.status, 0, again.stderr);
  assert.match(again.stderr, 'pass --control type=canny,image=<picture>,model=<ControlNet folder>,weight=0.8,start=0,end=1,resize=just-resize,low=50,high=150');
  assert.match(again.stderr, 'pass --control type=none,image=<picture>,model=<ControlNet folder>,weight=1,start=0.2,end=0.9,guess,resize=crop-and-resize');
});

cli('the control changes the picture; img2img takes it too', () => {
  const plain = join(dir, 'plain.png');
  const controlled = join(dir, 'controlled.png');
  assert.is(diffuse(base(plain)).status, 0);
  assert.is(diffuse([...base(controlled), '--control', `image=${picture},model=${CONTROLNET}`]).status, 0);
  assert.not.equal(readFileSync(plain), readFileSync(controlled));
  const img2img = diffuse(['img2img', 'a lighthouse', '-i', join(PICTURES, 'init.32x32.png'), '--model', model.dir, '--steps', '3', '-o', join(dir, 'i.png'), '--quiet', '--control', `type=invert,image=${picture},model=${CONTROLNET}`]);
  assert.is(img2img.status, 0, img2img.stderr);
});

cli('type=depth: the DPT estimator beside the ControlNet makes the picture; without one, exit 2', () => {
  // A ControlNet folder in the model layout with tiny-dpt's estimator beside it, as SD2-depth ships one.
  const folder = join(dir, 'depth-controlnet');
  mkdirSync(folder);
  symlinkSync(CONTROLNET, join(folder, 'controlnet'), 'junction');
  for (const part of ['depth_estimator', 'feature_extractor']) symlinkSync(join(FIXTURES, 'tiny-dpt', part), join(folder, part), 'junction');
  const out = join(dir, 'depth.png');
  const r = diffuse([...base(out), '--control', `type=depth,image=${join(PICTURES, 'init.32x32.png')},model=${folder}`]);
  assert.is(r.status, 0, r.stderr);
  const meta = readGenerationMetadata(readFileSync(out));
  assert.ok(meta.kind === 'a1111' && /^Module: depth, Model: [^,]+ \[[0-9a-f]{8}\], Weight: 1\.0,/.test(meta.parameters.extra['ControlNet 0'] ?? ''), JSON.stringify(meta));
  const none = diffuse([...base(join(dir, 'nodepth.png')), '--control', `type=depth,image=${picture},model=${CONTROLNET}`]);
  assert.is(none.status, 2, none.stderr);
  assert.is(none.stderr.trim().split('\n').length, 1, none.stderr);
  assert.match(none.stderr, /type=depth needs a DPT depth estimator/);
});

cli('model=ControlNet weights (a diffusers folder): converted once into the cache, recorded by its name and sd-webui-controlnet hash', () => {
  const folder = writeDiffusersFolder(join(dir, 'control_tiny_folder'), 'tiny', { layoutDir: join(FIXTURES, 'controlnet-files'), tokenizers: {} });
  const out = join(dir, 'file.png');
  const env = { env: { DIFFUSE_HOME: join(dir, 'home') } };
  const r = diffuse([...base(out), '--control', `type=canny,image=${picture},model=${folder}`], env);
  assert.is(r.status, 0, r.stderr);
  const meta = readGenerationMetadata(readFileSync(out));
  assert.ok(meta.kind === 'a1111' && /^Module: canny, Model: control_tiny_folder \[[0-9a-f]{8}\],/.test(meta.parameters.extra['ControlNet 0'] ?? ''), JSON.stringify(meta));
  // The same weights under the folder's name once converted: the second run reuses the cache and paints the same picture.
  const again = join(dir, 'file-again.png');
  assert.is(diffuse([...base(again), '--control', `type=canny,image=${picture},model=${folder}`], env).status, 0);
  assert.equal(readFileSync(again), readFileSync(out));
});

cli('bad --control values: exit 2, one line, no file', () => {
  const out = join(dir, 'bad.png');
  const good = `image=${picture},model=${CONTROLNET}`;
  for (const [spec, pattern, modelDir] of [
    [`type=sobel,${good}`, /type must be one of canny, threshold, scribble-xdog, lineart-standard, invert, depth, softedge, softedge-safe, softedge-pidinet, softedge-pidisafe, scribble-hed, scribble-pidinet, lineart, lineart-coarse, lineart-anime, openpose, openpose-hand, openpose-face, openpose-faceonly, openpose-full, mlsd, dwpose, none/],
    [`model=${CONTROLNET}`, /missing image=/],
    [`image=${picture}`, /missing model=/],
    [`${good},weight=abc`, /weight must be a number from 0 to 2/],
    [`${good},start=0.5,end=0.2`, /start 0.5 must be below end 0.2/],
    [`${good},colour=red`, /unknown field 'colour'/],
    [`${good},guess=maybe`, /guess takes no value, or true\/false/],
    [`${good},resize=stretch`, /resize must be one of/],
    [`type=canny,${good},res=63`, /res must be a whole number from 64 to 2048, or pixel-perfect \(got '63'\)/],
    [`type=canny,${good},res=512.5`, /res must be a whole number from 64 to 2048/],
    [`type=none,${good},res=512`, /res= is the Preprocessor Resolution of type=canny\/.*; type=none takes none: drop res= or change type=/],
    [`image=${join(dir, 'missing.png')},model=${CONTROLNET}`, /--control image/],
    [`image=${picture},model=${dir}`, /no controlnet\/model.onnx or model.onnx there, nor ControlNet weights/],
    [`image=${picture},model=${join(dir, 'none.safetensors')}`, /model .*none\.safetensors: no such file or folder/],
    [`image=${picture},model=/dev/zero`, /--control model: cannot read \/dev\/zero: it is a device, not a regular file/],
    [good, /takes no ControlNet residuals/, TINY_SD],
  ] as const) {
    const r = diffuse(['txt2img', 'x', '--model', modelDir ?? model.dir, '--steps', '1', '-o', out, '--control', spec]);
    assert.is(r.status, 2, `${spec}: ${r.stderr}`);
    assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, pattern);
  }
  assert.not.ok(readdirSync(dir).includes('bad.png'));
});

/**
 * type=scribble-xdog|lineart-standard|canny: the image equals the one made from sd-webui-controlnet's own map
 * (tools/make_line_preprocess_refs.py) passed as type=none, so the map is what the ControlNet saw; the record says
 * the extension's Module and Threshold A (xdog's level, 32 unless given), and --from gives level= back.
 */
const MAPS = join(FIXTURES, 'preprocess-lines');
const LINE_CASES = [
  ['scribble-xdog', '', 'drawing-70x45.scribble_xdog-32.png', 'Module: scribble_xdog, Model: tiny-sd-control \\[[0-9a-f]{8}\\], Weight: 1\\.0, .*Threshold A: 32'],
  ['scribble-xdog', ',level=12', 'scene-64.scribble_xdog-12.png', 'Module: scribble_xdog, .*Threshold A: 12'],
  ['lineart-standard', '', 'drawing-70x45.lineart_standard.png', 'Module: lineart_standard, Model: tiny-sd-control'],
  ['canny', '', 'drawing-70x45.canny.png', 'Module: canny, Model: tiny-sd-control \\[[0-9a-f]{8}\\], Weight: 1\\.0,'],
] as const;
for (const [type, extra, map, record] of LINE_CASES) {
  cli(`type=${type}${extra} = the extension's map given as type=none`, async () => {
    const out = join(dir, `${map}.out.png`);
    const r = diffuse([...base(out), '--control', `type=${type},image=${join(MAPS, `${map.split('.')[0]}.png`)},model=${CONTROLNET}${extra}`]);
    assert.is(r.status, 0, r.stderr);
    const given = join(dir, `${map}.given.png`);
    assert.is(diffuse([...base(given), '--control', `type=none,image=${join(MAPS, map)},model=${CONTROLNET}`]).status, 0);
    assert.equal((await loadImage(out)).rgb.data, (await loadImage(given)).rgb.data);
    const meta = readGenerationMetadata(readFileSync(out));
    assert.ok(meta.kind === 'a1111', JSON.stringify(meta));
    assert.match(meta.parameters.extra['ControlNet 0'] ?? '', new RegExp(`^${record}`));
    if (extra) {
      const again = diffuse(['txt2img', '--from', out, '--model', model.dir, '--steps', '1', '-o', join(dir, 'xdog-again.png')]);
      assert.is(again.status, 0, again.stderr);
      assert.match(again.stderr, 'pass --control type=scribble-xdog,image=<picture>,model=<ControlNet folder>,weight=1,start=0,end=1,resize=just-resize,level=12');
    }
  });
}

/**
 * res=512 (Preprocessor Resolution) on a 600x530 picture: the image equals the one made from sd-webui-controlnet's
 * own 580x512 map at res=512 (tools/make_processor_res_refs.py) passed as type=none; the record says
 * "Processor Res: 512" where the extension writes it, and --from gives res= back.
 */
const RES_MAPS = join(FIXTURES, 'processor-res');
for (const [type, map, record, hint] of [
  ['canny', 'cells-600x530-21.canny-512.png', 'Resize Mode: Just Resize, Low Vram: False, Processor Res: 512, Threshold A: 100.0, Threshold B: 200.0,', 'resize=just-resize,low=100,high=200,res=512'],
  ['scribble-xdog', 'cells-600x530-21.scribble_xdog-512.png', 'Low Vram: False, Processor Res: 512, Threshold A: 32.0,', 'resize=just-resize,level=32,res=512'],
] as const) {
  cli(`type=${type},res=512 = the extension's map at res=512 given as type=none`, async () => {
    const source = join(dir, 'cells-600x530.png');
    writeFileSync(source, await encodePng(seededPicture(600, 530, 21, 'cells')));
    const out = join(dir, `${map}.res.png`);
    const r = diffuse([...base(out), '--control', `type=${type},image=${source},model=${CONTROLNET},res=512`]);
    assert.is(r.status, 0, r.stderr);
    const given = join(dir, `${map}.res-given.png`);
    assert.is(diffuse([...base(given), '--control', `type=none,image=${join(RES_MAPS, map)},model=${CONTROLNET}`]).status, 0);
    assert.equal((await loadImage(out)).rgb.data, (await loadImage(given)).rgb.data);
    const plain = join(dir, `${map}.plain.png`);
    assert.is(diffuse([...base(plain), '--control', `type=${type},image=${source},model=${CONTROLNET}`]).status, 0);
    assert.not.equal((await loadImage(plain)).rgb.data, (await loadImage(out)).rgb.data, 'without res= the map is made at 530');
    const meta = readGenerationMetadata(readFileSync(out));
    assert.ok(meta.kind === 'a1111', JSON.stringify(meta));
    assert.match(meta.parameters.extra['ControlNet 0'] ?? '', record);
    assert.not.match(JSON.stringify(readGenerationMetadata(readFileSync(plain))), 'Processor Res', 'without res= none is recorded');
    const again = diffuse(['txt2img', '--from', out, '--model', model.dir, '--steps', '1', '-o', join(dir, `res-again-${type}.png`)]);
    assert.is(again.status, 0, again.stderr);
    assert.match(again.stderr, hint);
  });
}

cli("an A1111 image's Processor Res: --from gives res= back where the type takes it (not -1, not for none; res=pixel-perfect with Pixel Perfect)", async () => {
  const text = [
    'a lighthouse',
    'Steps: 1, Sampler: Euler, CFG scale: 7.0, Seed: 5, Size: 64x64, '
      + 'ControlNet 0: "Module: canny, Model: control_v11p_sd15_canny [d14c016b], Weight: 1.0, Resize Mode: Crop and Resize, Processor Res: 512, Threshold A: 100.0, Threshold B: 200.0, Guidance Start: 0.0, Guidance End: 1.0, Pixel Perfect: False, Control Mode: Balanced", '
      + 'ControlNet 1: "Module: none, Model: control_v11p_sd15_canny [d14c016b], Weight: 1.0, Resize Mode: Crop and Resize, Processor Res: -1, Threshold A: -1.0, Threshold B: -1.0, Guidance Start: 0.0, Guidance End: 1.0, Pixel Perfect: False, Control Mode: Balanced", '
      + 'ControlNet 2: "Module: scribble_xdog, Model: control_v11p_sd15_canny [d14c016b], Weight: 1.0, Resize Mode: Crop and Resize, Processor Res: 512, Threshold A: 32.0, Threshold B: -1.0, Guidance Start: 0.0, Guidance End: 1.0, Pixel Perfect: True, Control Mode: Balanced"',
  ].join('\n');
  const a1111 = join(dir, 'a1111-res.png');
  writeFileSync(a1111, insertPngText(await encodePng(seededPicture(8, 8, 1, 'noise')), [{ keyword: 'parameters', text }]));
  const again = diffuse(['txt2img', '--from', a1111, '--model', model.dir, '--steps', '1', '-o', join(dir, 'a1111-res-again.png')]);
  assert.is(again.status, 0, again.stderr);
  assert.match(again.stderr, /pass --control type=canny,image=<picture>,model=control_v11p_sd15_canny,weight=1,start=0,end=1,resize=crop-and-resize,low=100,high=200,res=512\n/);
  assert.match(again.stderr, /pass --control type=none,image=<picture>,model=control_v11p_sd15_canny,weight=1,start=0,end=1,resize=crop-and-resize\n/);
  // Pixel Perfect: the recorded 512 is not the resolution the extension used; it computes that one again.
  assert.match(again.stderr, /pass --control type=scribble-xdog,image=<picture>,model=control_v11p_sd15_canny,weight=1,start=0,end=1,resize=crop-and-resize,level=32,res=pixel-perfect\n/);
});

/**
 * res=pixel-perfect on the 600x530 picture painted at 128x96: the image equals the one made with res= the extension's
 * Pixel Perfect gives for it (tools/make_pixel_perfect_refs.py: 113 for just-resize), and not the one at 512; the
 * record says "Processor Res: 512" and "Pixel Perfect: True" as the extension writes them, and --from gives
 * res=pixel-perfect back. A picture with nothing left at its resolution is refused in one line.
 */
cli('res=pixel-perfect = res= the extension computes; recorded as it records it; --from gives it back', async () => {
  const source = join(dir, 'cells-600x530-pp.png');
  writeFileSync(source, await encodePng(seededPicture(600, 530, 21, 'cells')));
  const { cases } = readJson<{ cases: { picture: number[]; painted: number[]; resize: string; res: number }[] }>(join(FIXTURES, 'pixel-perfect', 'cases.json'));
  const { res } = cases.find((c) => c.picture.join('x') === '600x530' && c.painted.join('x') === '128x96' && c.resize === 'just-resize')!;
  const sized = (out: string) => [...base(out), '-W', '128', '-H', '96'];
  const images = await Promise.all(['pixel-perfect', String(res), '512'].map(async (value) => {
    const out = join(dir, `pp-${value}.png`);
    const r = diffuse([...sized(out), '--control', `type=canny,image=${source},model=${CONTROLNET},res=${value}`]);
    assert.is(r.status, 0, r.stderr);
    return { out, data: (await loadImage(out)).rgb.data };
  }));
  assert.equal(images[0]!.data, images[1]!.data, `res=pixel-perfect is res=${res}`);
  assert.not.equal(images[0]!.data, images[2]!.data, 'and not the recorded 512');
  const meta = readGenerationMetadata(readFileSync(images[0]!.out));
  assert.ok(meta.kind === 'a1111', JSON.stringify(meta));
  assert.match(meta.parameters.extra['ControlNet 0'] ?? '', 'Low Vram: False, Processor Res: 512, Threshold A: 100.0, Threshold B: 200.0, Guidance Start: 0.0, Guidance End: 1.0, Pixel Perfect: True,');
  const again = diffuse(['txt2img', '--from', images[0]!.out, '--model', model.dir, '--steps', '1', '-o', join(dir, 'pp-again.png')]);
  assert.is(again.status, 0, again.stderr);
  assert.match(again.stderr, 'resize=just-resize,low=100,high=200,res=pixel-perfect\n');
  // 400x1 fitted into 128x96: 0.32 of its one row, rounded to 0.
  const thin = join(dir, 'thin-400x1.png');
  writeFileSync(thin, await encodePng(seededPicture(400, 1, 3, 'noise')));
  const refused = diffuse([...sized(join(dir, 'pp-thin.png')), '--control', `type=canny,image=${thin},model=${CONTROLNET},resize=resize-and-fill,res=pixel-perfect`]);
  assert.is(refused.status, 2, refused.stderr);
  assert.match(refused.stderr.trim(), /^[^\n]*res=pixel-perfect gives 0 for the 400x1 picture painted at 128x96: nothing is left of a side; crop the picture or give res=$/);
});

cli.run();
