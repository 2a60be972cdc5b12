// The X/Y/Z plot's picture, laid out as AUTOMATIC1111's scripts/xyz_grid.py draws it
// (images.image_grid and images.draw_grid_annotations): per Z value a grid of X columns and Y rows
// with the X labels on top and the Y labels on the left, then the Z grids side by side with the
// Z labels on top. Labels use the embedded bitmap font (bitmap-font.ts), so the picture is the
// same bytes on every machine; A1111 draws them with a TrueType font, which no two systems render
// alike.

import { GLYPH_SIZE, drawText, textWidth } from './bitmap-font.js';
import { createRaster, paste, type Raster } from './raster.js';

export interface GridLabels {
  x: readonly string[];
  y: readonly string[];
  z: readonly string[];
}

export interface GridCounts {
  x: number;
  y: number;
  z: number;
}

/**
 * The tiles (X varying fastest, then Y, then Z, as A1111 indexes them) as one picture; `labels`
 * undefined draws none (A1111's "Draw legend" off). Each tile is pasted at its cell's top-left
 * corner, unchanged, so a tile's region in the grid is the image itself.
 */
export function xyzGrid(tiles: readonly Raster[], counts: GridCounts, labels?: GridLabels): Raster {
  const perGrid = counts.x * counts.y;
  if (tiles.length !== perGrid * counts.z) throw new RangeError(`${tiles.length} tiles for a ${counts.x}x${counts.y}x${counts.z} grid`);
  // Tiles of different sizes (a width axis) get cells of the largest; A1111 assumes one size.
  const cell = { width: Math.max(...tiles.map((t) => t.width)), height: Math.max(...tiles.map((t) => t.height)) };
  const grids = Array.from({ length: counts.z }, (_, z) => {
    const grid = imageGrid(tiles.slice(z * perGrid, (z + 1) * perGrid), counts.x, cell);
    return labels ? annotate(grid, cell, labels.x, labels.y) : grid;
  });
  const all = imageGrid(grids, counts.z, { width: grids[0]!.width, height: grids[0]!.height });
  // As A1111, the Z titles are drawn even for one Z value (an empty title still leaves the margin).
  return labels ? annotate(all, { width: grids[0]!.width, height: grids[0]!.height }, labels.z, ['']) : all;
}

/** A1111's image_grid: `cols` cells per row on black, each image at its cell's top-left corner. */
function imageGrid(images: readonly Raster[], cols: number, cell: { width: number; height: number }): Raster {
  const rows = Math.ceil(images.length / cols);
  const grid = createRaster(cols * cell.width, rows * cell.height, images[0]!.channels);
  images.forEach((image, i) => paste(grid, image, (i % cols) * cell.width, Math.floor(i / cols) * cell.height));
  return grid;
}

interface Line {
  text: string;
  height: number;
}

/**
 * draw_grid_annotations: a white margin on top (column texts centred over each column) and, when
 * any row text is not empty, on the left (3/4 of a cell wide, row texts centred beside each row).
 * A1111's font size is (cell width + height) // 25 points; here the 8-pixel glyphs are scaled by
 * the whole number nearest to it / 8 (at least 1), and lines are spaced by half a glyph height.
 */
function annotate(image: Raster, cell: { width: number; height: number }, columns: readonly string[], rows: readonly string[]): Raster {
  const scale = Math.max(1, Math.round(Math.floor((cell.width + cell.height) / 25) / GLYPH_SIZE));
  const glyph = GLYPH_SIZE * scale;
  const spacing = Math.floor(glyph / 2);
  const padLeft = rows.some((t) => t.length > 0) ? Math.floor((cell.width * 3) / 4) : 0;
  const lines = (text: string, width: number): Line[] => wrap(text, width, scale).map((t) => ({ text: t, height: t ? glyph : 0 }));
  const columnLines = columns.map((t) => lines(t, cell.width));
  const rowLines = rows.map((t) => lines(t, padLeft));
  const columnHeights = columnLines.map((ls) => ls.reduce((sum, l) => sum + l.height + spacing, 0) - spacing);
  // A1111 subtracts the spacing once per line here: a row's block is centred on its glyphs alone.
  const rowHeights = rowLines.map((ls) => ls.reduce((sum, l) => sum + l.height, 0));
  const padTop = Math.max(...columnHeights) + spacing * 2;

  const out = createRaster(image.width + padLeft, image.height + padTop, image.channels);
  out.data.fill(255);
  paste(out, image, padLeft, padTop);
  const draw = (ls: Line[], centreX: number, top: number) => {
    let y = top;
    for (const line of ls) {
      drawText(out, line.text, Math.floor(centreX - textWidth(line.text, scale) / 2), Math.floor(y), scale, BLACK);
      y += line.height + spacing;
    }
  };
  columnLines.forEach((ls, col) => draw(ls, padLeft + cell.width * col + cell.width / 2, padTop / 2 - columnHeights[col]! / 2));
  rowLines.forEach((ls, row) => draw(ls, padLeft / 2, padTop + cell.height * row + cell.height / 2 - rowHeights[row]! / 2));
  return out;
}

const BLACK = [0, 0, 0, 255];

/**
 * Words joined into lines no wider than `width`, as A1111's wrap(); a word wider than that is cut
 * into pieces that fit (a bitmap font cannot shrink), at least one character each.
 */
function wrap(text: string, width: number, scale: number): string[] {
  const lines: string[] = [];
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const joined = lines.length ? `${lines.at(-1)} ${word}` : word;
    if (lines.length && textWidth(joined, scale) <= width) lines[lines.length - 1] = joined;
    else lines.push(word);
  }
  const perLine = Math.max(1, Math.floor(width / (GLYPH_SIZE * scale)));
  const fitted = lines.flatMap((line) => {
    const chars = [...line];
    if (chars.length <= perLine) return [line];
    return Array.from({ length: Math.ceil(chars.length / perLine) }, (_, i) => chars.slice(i * perLine, (i + 1) * perLine).join(''));
  });
  return fitted.length ? fitted : [''];
}
