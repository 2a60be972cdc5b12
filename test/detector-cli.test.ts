import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ensureConvertedDetector } from '../src/graphs/detector-convert.js';
import { encodePng } from '../src/image/encode-png.js';
import { loadImage } from '../src/image/load-image.js';
import { atProcessorResolution } from '../src/image/preprocess/processor-resolution.js';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { scribbleFromEdges } from '../src/image/preprocess/scribble-edges.js';
import { hedControlPicture, lineartAnimeControlPicture, lineartControlPicture, mlsdControlPicture, openposeControlPicture, pidinetControlPicture } from '../src/pipeline/detector-control.js';
import { diffuse, tempDir } from './helpers/cli.js';
import { FIXTURES } from './helpers/fixtures.js';
import { assembleModel, type AssembledModel } from './helpers/assemble-model.js';
import { detectorFixtures, writeDetectorWeights } from './helpers/detector-weights.js';
import type { Raster } from '../src/image/raster.js';

/**
 * --control type=softedge|softedge-safe|softedge-pidinet|softedge-pidisafe|scribble-hed|scribble-pidinet|lineart|lineart-coarse|lineart-anime|openpose|mlsd,
 * detector=FILE: the image equals the one made from the preprocessor's map (src/pipeline/detector-control.ts, compared
 * with controlnet_aux's in test/detectors.test.ts; scribble's steps after it, src/image/preprocess/scribble-edges.ts,
 * with the extension's in test/scribble.test.ts) passed as type=none, so that map is what the
 * ControlNet saw; the metadata says sd-webui-controlnet's Module, --from gives the type back, and a
 * detector of another network is one line, exit 2, no image.
 */
const cli = suite('diffuse --control with a detector network');
const CONTROLNET = join(FIXTURES, 'tiny-sd-control', 'controlnet');
let model: AssembledModel;
let dir: string;
let hed: string;
let lineart: string;
let pidinet: string;
let lineartAnime: string;
let openpose: string;
let mlsd: string;
cli.before(() => {
  model = assembleModel('tiny-sd-control');
  dir = tempDir();
  hed = writeDetectorWeights('hed', dir);
  lineart = writeDetectorWeights('lineart', dir);
  pidinet = writeDetectorWeights('pidinet', dir);
  lineartAnime = writeDetectorWeights('lineart-anime', dir);
  openpose = writeDetectorWeights('openpose', dir);
  mlsd = writeDetectorWeights('mlsd', dir);
});
cli.after(() => {
  model.remove();
  rmSync(dir, { recursive: true, force: true });
});

const base = (out: string) => ['txt2img', 'a lighthouse', '--model', model.dir, '--steps', '2', '--seed', '5', '-W', '64', '-H', '64', '-o', out, '--quiet'];

const CASES = [
  ['softedge', 'hed', 'scene-64', 'softedge_hed'],
  ['softedge-safe', 'hed', 'scene-128x64', 'softedge_hedsafe'],
  ['softedge-pidinet', 'pidinet', 'scene-45x70', 'softedge_pidinet'],
  ['softedge-pidisafe', 'pidinet', 'scene-128x64', 'softedge_pidisafe'],
  ['scribble-hed', 'hed', 'scene-45x70', 'scribble_hed'],
  ['scribble-pidinet', 'pidinet', 'scene-64', 'scribble_pidinet'],
  ['lineart', 'lineart', 'scene-45x70', 'lineart_realistic'],
  ['lineart-coarse', 'lineart', 'scene-128x64', 'lineart_coarse'],
  ['lineart-anime', 'lineart-anime', 'scene-45x70', 'lineart_anime'],
  ['openpose', 'openpose', 'scene-64', 'openpose'],
] as const;

/** The type's map as src/pipeline/detector-control.ts makes it from the converted graph. */
async function detectorMap(type: (typeof CASES)[number][0], graph: string, rgb: Raster): Promise<Raster> {
  const session = { device: 'cpu' } as const;
  if (type === 'softedge' || type === 'softedge-safe') return hedControlPicture(graph, rgb, type === 'softedge-safe', session);
  if (type === 'scribble-hed') return scribbleFromEdges(await hedControlPicture(graph, rgb, false, session));
  if (type === 'scribble-pidinet') return scribbleFromEdges(await pidinetControlPicture(graph, rgb, false, session));
  if (type === 'softedge-pidinet' || type === 'softedge-pidisafe') return pidinetControlPicture(graph, rgb, type === 'softedge-pidisafe', session);
  if (type === 'lineart-anime') return lineartAnimeControlPicture(graph, rgb, session);
  if (type === 'openpose') return openposeControlPicture(graph, rgb, session);
  return lineartControlPicture(graph, rgb, session);
}

for (const [type, kind, name, module] of CASES) {
  cli(`type=${type} = its map given as type=none; Module: ${module}`, async () => {
    const out = join(dir, `${type}.png`);
    const picture = join(detectorFixtures(kind), `${name}.png`);
    const weights = { hed, lineart, pidinet, openpose, 'lineart-anime': lineartAnime }[kind];
    const r = diffuse([...base(out), '--control', `type=${type},image=${picture},model=${CONTROLNET},detector=${weights}`]);
    assert.is(r.status, 0, r.stderr);
    const graph = await ensureConvertedDetector(kind, weights, join(dir, 'cache'));
    const rgb = (await loadImage(picture)).rgb;
    const made = await detectorMap(type, graph, rgb);
    const map = join(dir, `${type}.map.png`);
    writeFileSync(map, await encodePng(made));
    const given = join(dir, `${type}.given.png`);
    assert.is(diffuse([...base(given), '--control', `type=none,image=${map},model=${CONTROLNET}`]).status, 0);
    assert.equal((await loadImage(out)).rgb.data, (await loadImage(given)).rgb.data);
    const meta = readGenerationMetadata(readFileSync(out));
    assert.ok(meta.kind === 'a1111', JSON.stringify(meta));
    assert.match(meta.parameters.extra['ControlNet 0'] ?? '', new RegExp(`^Module: ${module}, Model: tiny-sd-control \\[[0-9a-f]{8}\\], Weight: 1\\.0,`));
    const again = diffuse(['txt2img', '--from', out, '--model', model.dir, '--steps', '1', '-W', '64', '-H', '64', '-o', join(dir, `${type}.again.png`)]);
    assert.is(again.status, 0, again.stderr);
    assert.match(again.stderr, `pass --control type=${type},image=<picture>,model=<ControlNet folder>,weight=1`);
  });
}

cli('type=openpose,res=128: the map of the picture scaled to Preprocessor Resolution 128, given as type=none', async () => {
  const picture = join(detectorFixtures('openpose'), 'scene-64.png');
  const out = join(dir, 'openpose-res.png');
  const r = diffuse([...base(out), '--control', `type=openpose,image=${picture},model=${CONTROLNET},res=128,detector=${openpose}`]);
  assert.is(r.status, 0, r.stderr);
  const graph = await ensureConvertedDetector('openpose', openpose, join(dir, 'cache'));
  const scaled = atProcessorResolution((await loadImage(picture)).rgb, 128);
  const made = await openposeControlPicture(graph, scaled, { device: 'cpu' });
  assert.equal([made.width, made.height], [128, 128]);
  const map = join(dir, 'openpose-res.map.png');
  writeFileSync(map, await encodePng(made));
  const given = join(dir, 'openpose-res.given.png');
  assert.is(diffuse([...base(given), '--control', `type=none,image=${map},model=${CONTROLNET}`]).status, 0);
  assert.equal((await loadImage(out)).rgb.data, (await loadImage(given)).rgb.data);
});

cli('type=mlsd,value=0.2,distance=2.5 = its map given as type=none; recorded as Module: mlsd with its two thresholds; --from gives them back', async () => {
  const picture = join(detectorFixtures('pidinet'), 'scene-128x64.png');
  const out = join(dir, 'mlsd.png');
  const r = diffuse([...base(out), '--control', `type=mlsd,image=${picture},model=${CONTROLNET},value=0.2,distance=2.5,detector=${mlsd}`]);
  assert.is(r.status, 0, r.stderr);
  const graph = await ensureConvertedDetector('mlsd', mlsd, join(dir, 'cache'));
  const made = await mlsdControlPicture(graph, (await loadImage(picture)).rgb, { value: 0.2, distance: 2.5 }, { device: 'cpu' });
  assert.ok(made.data.some((v) => v === 255), 'lines are drawn');
  const map = join(dir, 'mlsd.map.png');
  writeFileSync(map, await encodePng(made));
  const given = join(dir, 'mlsd.given.png');
  assert.is(diffuse([...base(given), '--control', `type=none,image=${map},model=${CONTROLNET}`]).status, 0);
  assert.equal((await loadImage(out)).rgb.data, (await loadImage(given)).rgb.data);
  const meta = readGenerationMetadata(readFileSync(out));
  assert.ok(meta.kind === 'a1111', JSON.stringify(meta));
  assert.match(meta.parameters.extra['ControlNet 0'] ?? '', /^Module: mlsd, Model: tiny-sd-control \[[0-9a-f]{8}\], Weight: 1\.0, Resize Mode: Just Resize, Low Vram: False, Threshold A: 0\.2, Threshold B: 2\.5, Guidance Start: 0\.0,/);
  const again = diffuse(['txt2img', '--from', out, '--model', model.dir, '--steps', '1', '-W', '64', '-H', '64', '-o', join(dir, 'mlsd.again.png')]);
  assert.is(again.status, 0, again.stderr);
  assert.match(again.stderr, 'pass --control type=mlsd,image=<picture>,model=<ControlNet folder>,weight=1,start=0,end=1,resize=just-resize,value=0.2,distance=2.5');
});

cli('a detector of another network (the body, hand and face networks too), an absent file, or one on another type: one line, exit 2, no image', () => {
  const picture = join(detectorFixtures('hed'), 'scene-64.png');
  const cases: [string, RegExp][] = [
    [`type=softedge,image=${picture},model=${CONTROLNET},detector=${join(FIXTURES, 'graphs', 'mini.ckpt')}`, /mini\.ckpt is not HED's ControlNetHED\.pth \(/],
    [`type=softedge,image=${picture},model=${CONTROLNET},detector=${lineart}`, /lineart\.safetensors is not HED's ControlNetHED\.pth \(no tensor norm\)/],
    [`type=openpose,image=${picture},model=${CONTROLNET},detector=${hed}`, /hed\.safetensors is not OpenPose's body_pose_model\.pth \(no tensor conv1_1\.weight\)/],
    [`type=lineart,image=${picture},model=${CONTROLNET},detector=${hed}`, /hed\.safetensors is not lineart's sk_model\.pth \(no tensor model0\.1\.weight\)/],
    [`type=softedge-pidisafe,image=${picture},model=${CONTROLNET},detector=${lineart}`, /lineart\.safetensors is not PiDiNet's table5_pidinet\.pth \(no tensor module\.init_block\.weight\)/],
    [`type=scribble-pidinet,image=${picture},model=${CONTROLNET},detector=${hed}`, /hed\.safetensors is not PiDiNet's table5_pidinet\.pth \(no tensor module\.init_block\.weight\)/],
    [`type=mlsd,image=${picture},model=${CONTROLNET},detector=${pidinet}`, /pidinet\.safetensors is not M-LSD's mlsd_large_512_fp32\.pth \(no tensor backbone\.features\.0\.0\.weight\)/],
    [`type=canny,image=${picture},model=${CONTROLNET},value=0.2`, /value= is a threshold of type=mlsd; type=canny takes none/],
    [`type=mlsd,image=${picture},model=${CONTROLNET},distance=25,detector=${mlsd}`, /distance must be a number from 0\.01 to 20 \(got '25'\)/],
    [`type=softedge,image=${picture},model=${CONTROLNET},detector=${join(dir, 'absent.pth')}`, /detector .*absent\.pth: no such file/],
    [`type=canny,image=${picture},model=${CONTROLNET},detector=${hed}`, /detector= is the network of type=softedge\/softedge-safe\/softedge-pidinet\/softedge-pidisafe\/scribble-hed\/scribble-pidinet\/lineart\/lineart-coarse\/lineart-anime\/openpose\/openpose-hand\/openpose-face\/openpose-faceonly\/openpose-full\/mlsd\/dwpose; type=canny takes none/],
    [`type=openpose-hand,image=${picture},model=${CONTROLNET},detector=${openpose},hand-detector=${openpose}`, /openpose\.safetensors is not OpenPose's hand_pose_model\.pth \(no tensor conv4_3\.weight\); pass lllyasviel\/Annotators' hand_pose_model\.pth as hand-detector=/],
    [`type=openpose-faceonly,image=${picture},model=${CONTROLNET},detector=${openpose},face-detector=${hed}`, /hed\.safetensors is not OpenPose's facenet\.pth \(no tensor conv1_1\.weight\); pass lllyasviel\/Annotators' facenet\.pth as face-detector=/],
    [`type=openpose-full,image=${picture},model=${CONTROLNET},detector=${openpose},hand-detector=${join(dir, 'absent.pth')},face-detector=${hed}`, /hand detector .*absent\.pth: no such file/],
    [`type=openpose,image=${picture},model=${CONTROLNET},detector=${openpose},hand-detector=${openpose}`, /hand-detector= is the hand network of type=openpose-hand\/openpose-full; type=openpose takes none/],
    [`type=openpose-hand,image=${picture},model=${CONTROLNET},face-detector=${openpose}`, /face-detector= is the face network of type=openpose-face\/openpose-faceonly\/openpose-full; type=openpose-hand takes none/],
  ];
  for (const [control, message] of cases) {
    const out = join(dir, 'bad.png');
    const r = diffuse([...base(out), '--control', control]);
    assert.is(r.status, 2, `${control}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.not.ok(existsSync(out));
  }
});

cli.run();
