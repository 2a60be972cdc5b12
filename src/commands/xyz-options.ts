import { MAX_XYZ_TILES } from '../settings/xyz.js';

/**
 * The X/Y/Z plot's flags on txt2img, img2img and inpaint: one table for commander, --help and
 * the README (test/readme.test.ts checks every row is there). They shape the run's output, not an
 * image, so they are not settings of the options table (no config key).
 */
export const XYZ_OPTIONS: readonly { flags: string; description: string }[] = [
  {
    flags: '--xyz <axes>',
    description: `an X/Y/Z plot as A1111's script: "sampler=euler,dpmpp_2m;cfg=4,7;steps=10-30 (+10)" (up to 3 axes X;Y;Z, each an image option with its values; numbers take ranges a-b, a-b (+step), a-b [count]; prompt=a,b,c replaces a in the prompt); one image per combination (at most ${MAX_XYZ_TILES}), written as one labelled grid to -o`,
  },
  { flags: '--xyz-no-labels', description: 'with --xyz: the grid without its label margins' },
  { flags: '--xyz-keep-tiles', description: 'with --xyz: also write every tile as its own image (a file target NAME.png: NAME-tile-1.png, ..., numbered as a batch\'s files)' },
];
