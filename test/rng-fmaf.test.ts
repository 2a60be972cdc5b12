import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fmaf } from '../src/fmaf.js';

// Exact products picked from integer factorisations so that a*b + c lies within 2^-56 of a point
// halfway between two float32 values: the double sum lands exactly on that midpoint, and only a
// single rounding (what vfmadd does) sees which side the true value is on.
// 2^32 + 1 = 641 * 6700417 (Euler's factorisation of the Fermat number F5); 2^32 - 1 = 65535 * 65537.

const ULP1 = 2 ** -23; // float32 spacing just above 1

test('fmaf rounds up when the true sum is just above a midpoint that ties down to even', () => {
  const a = 641 * 2 ** -24;
  const b = 6700417 * 2 ** -32; // a*b = 2^-24 + 2^-56
  assert.is(Math.fround(a * b + 1), 1); // double rounding: 1 + 2^-24 exactly, ties to even
  assert.is(fmaf(a, b, 1), 1 + ULP1);
});

test('fmaf rounds down when the true sum is just below a midpoint that ties up to even', () => {
  const a = 65535 * 2 ** -24;
  const b = 65537 * 2 ** -32; // a*b = 2^-24 - 2^-56
  const c = 1 + ULP1; // odd last bit: the midpoint above it ties up to 1 + 2^-22
  assert.is(Math.fround(a * b + c), 1 + 2 * ULP1);
  assert.is(fmaf(a, b, c), c);
});

test('fmaf equals the plain rounding whenever no double rounding can occur', () => {
  assert.is(fmaf(3, 5, 7), 22);
  const tenth = Math.fround(0.1);
  assert.is(fmaf(tenth, 10, -1), Math.fround(tenth * 10 - 1)); // the double sum is exact here
  assert.is(fmaf(2 ** -24, 1, 1), 1); // exact midpoint: ties to even
  assert.is(fmaf(3 * 2 ** -24, 1, 1), 1 + 2 * ULP1); // exact midpoint: ties to even, upwards
  assert.is(fmaf(-2, 0.5, 1), 0);
});

test.run();
