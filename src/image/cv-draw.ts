// The OpenCV 4.x drawing calls the pose and line preprocessors make (imgproc/src/drawing.cpp), on an 8-bit raster, with
// LINE_8 and no anti-aliasing: cv2.ellipse2Poly (the arc through OpenCV's table of sines at whole degrees, seven
// decimals, as float32; points rounded half to even, repeats dropped), cv2.fillConvexPoly (its outline drawn with
// 8-connected lines, then scanned with 16-bit fixed-point edges), cv2.circle with thickness -1 (the integer midpoint
// circle, each step filling two spans), cv2.line at thickness 1 (Line, clipped to the image) and with a thickness of 2
// or more (ThickLine: a quadrilateral of 16-bit fixed-point corners filled as above, its outline by the fixed-point
// Line2, and a filled circle at each end). Colours are written as given, one value per channel.

import { roundHalfEven } from '../round-half-even.js';
import type { Raster } from './raster.js';

export interface Point {
  x: number;
  y: number;
}

const XY_SHIFT = 16;
const XY_ONE = 1 << XY_SHIFT;

/** SinTable[i] = float32(sin(i degrees) to 7 decimals), i = 0..450. */
const SIN_TABLE = Float32Array.from({ length: 451 }, (_, i) => {
  const v = Math.round(Math.sin((i * Math.PI) / 180) * 1e7) / 1e7;
  return Object.is(v, -0) ? 0 : v;
});

/** cv2.ellipse2Poly(center, axes, angle, arcStart, arcEnd, delta) with integer arguments. */
export function ellipse2Poly(center: Point, axes: { width: number; height: number }, angle: number, arcStart: number, arcEnd: number, delta: number): Point[] {
  if (!(delta > 0 && delta <= 180)) throw new RangeError(`ellipse2Poly: delta ${delta} is not in 1..180`);
  let a = angle;
  while (a < 0) a += 360;
  while (a > 360) a -= 360;
  let [start, end] = arcStart > arcEnd ? [arcEnd, arcStart] : [arcStart, arcEnd];
  while (start < 0) [start, end] = [start + 360, end + 360];
  while (end > 360) [start, end] = [start - 360, end - 360];
  if (end - start > 360) [start, end] = [0, 360];
  const alpha = SIN_TABLE[450 - a]!;
  const beta = SIN_TABLE[a]!;
  const points: Point[] = [];
  let previous: Point | undefined;
  for (let i = start; i < end + delta; i += delta) {
    let t = i > end ? end : i;
    if (t < 0) t += 360;
    const x = axes.width * SIN_TABLE[450 - t]!;
    const y = axes.height * SIN_TABLE[t]!;
    const p = { x: roundHalfEven(center.x + x * alpha - y * beta), y: roundHalfEven(center.y + x * beta + y * alpha) };
    if (!previous || p.x !== previous.x || p.y !== previous.y) points.push((previous = p));
  }
  return points.length === 1 ? [{ ...center }, { ...center }] : points;
}

function fillSpan(image: Raster, y: number, x1: number, x2: number, color: readonly number[]): void {
  const cn = image.channels;
  for (let x = x1; x <= x2; x++) for (let c = 0; c < cn; c++) image.data[(y * image.width + x) * cn + c] = color[c]!;
}

/** C's int64 a * b / c (truncated): exact where a * b passes 2^53, as Line2's 16-bit fixed-point coordinates can. */
const mulDiv = (a: number, b: number, c: number): number => Number((BigInt(a) * BigInt(b)) / BigInt(c));

/** cv::clipLine: the segment clipped to the image (of `width` x `height` units), or undefined when it misses it. */
function clipLine(width: number, height: number, p1: Point, p2: Point): [Point, Point] | undefined {
  const right = width - 1;
  const bottom = height - 1;
  let { x: x1, y: y1 } = p1;
  let { x: x2, y: y2 } = p2;
  const code = (x: number, y: number) => (x < 0 ? 1 : 0) + (x > right ? 2 : 0) + (y < 0 ? 4 : 0) + (y > bottom ? 8 : 0);
  let c1 = code(x1, y1);
  let c2 = code(x2, y2);
  if ((c1 & c2) === 0 && (c1 | c2) !== 0) {
    if (c1 & 12) {
      const a = c1 < 8 ? 0 : bottom;
      x1 += mulDiv(a - y1, x2 - x1, y2 - y1);
      y1 = a;
      c1 = (x1 < 0 ? 1 : 0) + (x1 > right ? 2 : 0);
    }
    if (c2 & 12) {
      const a = c2 < 8 ? 0 : bottom;
      x2 += mulDiv(a - y2, x2 - x1, y2 - y1);
      y2 = a;
      c2 = (x2 < 0 ? 1 : 0) + (x2 > right ? 2 : 0);
    }
    if ((c1 & c2) === 0 && (c1 | c2) !== 0) {
      if (c1) {
        const a = c1 === 1 ? 0 : right;
        y1 += mulDiv(a - x1, y2 - y1, x2 - x1);
        x1 = a;
        c1 = 0;
      }
      if (c2) {
        const a = c2 === 1 ? 0 : right;
        y2 += mulDiv(a - x2, y2 - y1, x2 - x1);
        x2 = a;
        c2 = 0;
      }
    }
  }
  return (c1 | c2) === 0 ? [{ x: x1, y: y1 }, { x: x2, y: y2 }] : undefined;
}

/** OpenCV's Line(): an 8-connected LineIterator, left to right; cv2.line(image, from, to, color) at thickness 1, LINE_8. */
export function line(image: Raster, from: Point, to: Point, color: readonly number[]): void {
  let p1 = from;
  let p2 = to;
  if (p1.x < 0 || p1.x >= image.width || p2.x < 0 || p2.x >= image.width || p1.y < 0 || p1.y >= image.height || p2.y < 0 || p2.y >= image.height) {
    const clipped = clipLine(image.width, image.height, p1, p2);
    if (!clipped) return;
    [p1, p2] = clipped;
  }
  let deltaX = 1;
  let deltaY = 1;
  let dx = p2.x - p1.x;
  let dy = p2.y - p1.y;
  let start = p1;
  if (dx < 0) {
    dx = -dx;
    dy = -dy;
    start = p2;
  }
  if (dy < 0) {
    dy = -dy;
    deltaY = -1;
  }
  const vertical = dy > dx;
  if (vertical) [dx, dy, deltaX, deltaY] = [dy, dx, deltaY, deltaX];
  let err = dx - (dy + dy);
  const plusDelta = dx + dx;
  const minusDelta = -(dy + dy);
  // Steps along the major axis always, along the minor one when the error goes negative.
  let [minusX, minusY, plusX, plusY] = [deltaX, 0, 0, deltaY];
  if (vertical) [minusX, minusY, plusX, plusY] = [0, deltaX, deltaY, 0];
  let { x, y } = start;
  for (let i = 0; i <= dx; i++) {
    fillSpan(image, y, x, x, color);
    const carry = err < 0;
    err += minusDelta + (carry ? plusDelta : 0);
    x += minusX + (carry ? plusX : 0);
    y += minusY + (carry ? plusY : 0);
  }
}

/** floor(v / 2^shift): C's arithmetic right shift of an int64, for values past 32 bits. */
const shiftDown = (v: number, shift: number): number => Math.floor(v / 2 ** shift);

/**
 * OpenCV's Line2(): the 8-connected line between two points in 1/65536 pixels (clipped to the image in those units),
 * stepping one whole pixel along the major axis and the fixed-point slope along the other; its far end first.
 */
function line2(image: Raster, from: Point, to: Point, color: readonly number[]): void {
  const clipped = clipLine(image.width * XY_ONE, image.height * XY_ONE, from, to);
  if (!clipped) return;
  let [p1, p2] = clipped;
  let dx = p2.x - p1.x;
  let dy = p2.y - p1.y;
  const ax = Math.abs(dx);
  const ay = Math.abs(dy);
  const odd = (v: number) => (v % 2 === 0 ? v + 1 : v);
  const major = ax > ay;
  // Walked from the end with the smaller major coordinate.
  if (major ? dx < 0 : dy < 0) {
    [p1, p2] = [p2, p1];
    [dx, dy] = [-dx, -dy];
  }
  // The minor axis' step per pixel of the major one.
  const step = major ? Math.trunc((dy * XY_ONE) / odd(ax)) : Math.trunc((dx * XY_ONE) / odd(ay));
  let count = major ? shiftDown(p2.x - p1.x, XY_SHIFT) : shiftDown(p2.y - p1.y, XY_SHIFT);
  const put = (x: number, y: number) => {
    if (x >= 0 && x < image.width && y >= 0 && y < image.height) fillSpan(image, y, x, x, color);
  };
  const half = XY_ONE >> 1;
  put(shiftDown(p2.x + half, XY_SHIFT), shiftDown(p2.y + half, XY_SHIFT));
  let x = p1.x + half;
  let y = p1.y + half;
  if (major) x = shiftDown(x, XY_SHIFT);
  else y = shiftDown(y, XY_SHIFT);
  for (; count >= 0; count--) {
    if (major) {
      put(x, shiftDown(y, XY_SHIFT));
      x += 1;
      y += step;
    } else {
      put(shiftDown(x, XY_SHIFT), y);
      x += step;
      y += 1;
    }
  }
}

/** OpenCV's FillConvexPoly() (LINE_8) of points in 1/2^shift pixels: shift 0 (whole pixels) or 16 (ThickLine's). */
function fillConvexPolyShifted(image: Raster, points: readonly Point[], color: readonly number[], shift: number): void {
  const n = points.length;
  const delta = shift === 0 ? 0 : 1 << (shift - 1);
  const up = 2 ** (XY_SHIFT - shift);
  let imin = 0;
  let xmin = points[0]!.x;
  let xmax = xmin;
  let ymin = points[0]!.y;
  let ymax = ymin;
  let p0 = points[n - 1]!;
  for (let i = 0; i < n; i++) {
    const p = points[i]!;
    if (p.y < ymin) {
      ymin = p.y;
      imin = i;
    }
    ymax = Math.max(ymax, p.y);
    xmax = Math.max(xmax, p.x);
    xmin = Math.min(xmin, p.x);
    if (shift === 0) line(image, p0, p, color);
    else line2(image, { x: p0.x * up, y: p0.y * up }, { x: p.x * up, y: p.y * up }, color);
    p0 = p;
  }
  [xmin, xmax, ymin, ymax] = [xmin, xmax, ymin, ymax].map((v) => shiftDown(v + delta, shift)) as [number, number, number, number];
  if (n < 3 || xmax < 0 || ymax < 0 || xmin >= image.width || ymin >= image.height) return;
  ymax = Math.min(ymax, image.height - 1);
  const edge = [0, 1].map((i) => ({ idx: imin, di: i === 0 ? 1 : n - 1, x: -XY_ONE, dx: 0, ye: ymin }));
  let edges = n;
  let y = ymin;
  do {
    for (const e of edge) {
      if (y < e.ye) continue;
      let idx0 = e.idx;
      let idx = idx0 + e.di;
      if (idx >= n) idx -= n;
      for (; edges-- > 0; ) {
        const ty = shiftDown(points[idx]!.y + delta, shift);
        if (ty > y) {
          const xs = points[idx0]!.x * up;
          const xe = points[idx]!.x * up;
          e.ye = ty;
          e.dx = Math.trunc(((xe - xs) * 2 + (ty - y)) / (2 * (ty - y)));
          e.x = xs;
          e.idx = idx;
          break;
        }
        idx0 = idx;
        idx += e.di;
        if (idx >= n) idx -= n;
      }
    }
    if (edges < 0) break;
    if (y >= 0) {
      const [left, right] = edge[0]!.x > edge[1]!.x ? [edge[1]!, edge[0]!] : [edge[0]!, edge[1]!];
      let x1 = shiftDown(left.x + XY_ONE / 2, XY_SHIFT);
      let x2 = shiftDown(right.x + XY_ONE / 2, XY_SHIFT);
      if (x2 >= 0 && x1 < image.width) {
        x1 = Math.max(x1, 0);
        x2 = Math.min(x2, image.width - 1);
        fillSpan(image, y, x1, x2, color);
      }
    }
    edge[0]!.x += edge[0]!.dx;
    edge[1]!.x += edge[1]!.dx;
  } while (++y <= ymax);
}

/** cv2.fillConvexPoly(image, points, color) (LINE_8, shift 0). */
export function fillConvexPoly(image: Raster, points: readonly Point[], color: readonly number[]): void {
  fillConvexPolyShifted(image, points, color, 0);
}

/**
 * cv2.line(image, from, to, color, thickness) with thickness >= 2 (LINE_8, shift 0): the segment widened by
 * thickness / 2 on each side (corners rounded half to even in 1/65536 pixels) and filled, then a filled circle of
 * radius round(thickness / 2) at each end.
 */
export function thickLine(image: Raster, from: Point, to: Point, color: readonly number[], thickness: number): void {
  if (!(Number.isInteger(thickness) && thickness >= 2)) throw new RangeError(`thickLine: thickness ${thickness} is not a whole number >= 2`);
  const dx = from.x - to.x;
  const dy = to.y - from.y;
  const squared = dx * dx + dy * dy;
  const half = thickness * (XY_ONE >> 1);
  const p0 = { x: from.x * XY_ONE, y: from.y * XY_ONE };
  const p1 = { x: to.x * XY_ONE, y: to.y * XY_ONE };
  if (squared > Number.EPSILON) {
    const r = (half + (thickness & 1) * XY_ONE * 0.5) / Math.sqrt(squared);
    const dp = { x: roundHalfEven(dy * r), y: roundHalfEven(dx * r) };
    const corners = [
      { x: p0.x + dp.x, y: p0.y + dp.y },
      { x: p0.x - dp.x, y: p0.y - dp.y },
      { x: p1.x - dp.x, y: p1.y - dp.y },
      { x: p1.x + dp.x, y: p1.y + dp.y },
    ];
    fillConvexPolyShifted(image, corners, color, XY_SHIFT);
  }
  const radius = shiftDown(half + (XY_ONE >> 1), XY_SHIFT);
  for (const end of [from, to]) fillCircle(image, end, radius, color);
}

/** cv2.circle(image, center, radius, color, thickness=-1) (LINE_8, shift 0). */
export function fillCircle(image: Raster, center: Point, radius: number, color: readonly number[]): void {
  const { width, height } = image;
  let err = 0;
  let dx = radius;
  let dy = 0;
  let plus = 1;
  let minus = (radius << 1) - 1;
  const span = (y: number, xa: number, xb: number) => {
    if (y < 0 || y >= height || xa >= width || xb < 0) return;
    fillSpan(image, y, Math.max(xa, 0), Math.min(xb, width - 1), color);
  };
  while (dx >= dy) {
    const [y11, y12, y21, y22] = [center.y - dy, center.y + dy, center.y - dx, center.y + dx];
    const [x11, x12, x21, x22] = [center.x - dx, center.x + dx, center.x - dy, center.x + dy];
    // Inside the image or clipped, the same spans: OpenCV's clipped branch skips the outer pair when the
    // circle's whole box misses the image, which span() also does row by row.
    if (x11 < width && x12 >= 0 && y21 < height && y22 >= 0) {
      span(y11, x11, x12);
      span(y12, x11, x12);
      span(y21, x21, x22);
      span(y22, x21, x22);
    }
    dy++;
    err += plus;
    plus += 2;
    const mask = err <= 0 ? 0 : -1;
    err -= minus & mask;
    dx += mask;
    minus -= mask & 2;
  }
}
