// Upscaling models for the commands and the pipeline's tasks (upscale, SD upscale, hires fix): load one,
// run a picture through it as A1111 does.
export { type ChannelOrder, type FloatImage, type Upscaler, floatToRaster, loadUpscaler, upscaleTile, upscaleTileFloat } from './model.js';
export { DEFAULT_TILE, DEFAULT_TILE_OVERLAP, type TileOptions, type UpscaleOptions, a1111UpscaleTarget, checkTiling, upscaleOnce, upscaleRaster } from './upscale.js';
