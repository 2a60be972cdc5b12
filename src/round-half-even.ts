/**
 * Round half to even: numpy's and torch's round, Python's round(), and OpenCV's cvRound / saturate_cast (the SSE
 * conversion). Math.round sends halves up, so a half landing on an odd integer steps back one.
 */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
