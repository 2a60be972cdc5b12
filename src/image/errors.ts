// Typed failures of image IO, part of the project's DiffuseError family (message for the user, exit code:
// 2 for what the user typed, 1 for everything else).

import { DiffuseError, describeCause } from '../errors.js';

export class ImageError extends DiffuseError {}

/** Refused to replace an existing file (writes never clobber unless asked to overwrite). */
export class OutputExistsError extends ImageError {
  constructor(readonly path: string) {
    super(`${path} already exists (pass --overwrite to replace it)`);
  }
}

/** The output path cannot be created or written: missing permission, read-only or full disk, a directory in the way. */
export class OutputNotWritableError extends ImageError {
  constructor(readonly path: string, cause: unknown) {
    super(`cannot write ${path}: ${describeCause(cause)}`, 1, { cause });
  }
}

/** `-o` names a file whose extension we cannot write (with generation metadata, or for this command). */
export class UnsupportedOutputFormatError extends ImageError {
  constructor(
    readonly path: string,
    allowed = 'diffuse writes .png, .jpg, .webp and .avif (the formats that carry the generation parameters)',
  ) {
    super(`${path}: ${allowed}`, 2);
  }
}

/** A file name template uses an unknown placeholder or renders to nothing. */
export class NameTemplateError extends ImageError {
  constructor(readonly template: string, detail: string) {
    super(`file name template "${template}": ${detail}`, 2);
  }
}

/** The bytes are not a well-formed PNG (bad signature, truncated or corrupt chunk). */
export class InvalidPngError extends ImageError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 1, options);
  }
}

/** An input image that sharp cannot open or decode. `path` is undefined for in-memory input. */
export class ImageDecodeError extends ImageError {
  constructor(readonly path: string | undefined, cause: unknown) {
    super(`cannot read image${path === undefined ? '' : ` ${path}`}: ${describeCause(cause)}`, 1, { cause });
  }
}

/** A picture the user named (--init-image, --mask, ...) that is refused: unreadable, not PNG/JPEG/WebP, too big. */
export class ImageInputError extends ImageError {
  constructor(readonly label: string, readonly path: string, reason: string, options?: { cause?: unknown }) {
    super(`${label}: cannot read ${path}: ${reason}`, 2, options);
  }
}

/**
 * A pose detector's heatmap holds more peaks for one body part than the assembly is bounded to (its limb scoring
 * compares every pair of two parts' peaks): not a body pose network's output, or a crowd past what it handles.
 */
export class TooManyPeaksError extends ImageError {
  constructor(readonly part: number, readonly peaks: number, readonly limit: number) {
    super(`the pose heatmap has ${peaks} peaks for body part ${part}, more than ${limit}; the detector's weights are not OpenPose's body_pose_model.pth, or the picture holds more people than it handles`, 1);
  }
}

/**
 * More hands and faces than OpenPose's hand and face networks are bounded to run on in one picture (each hand is four
 * runs of up to 736x736 pixels): a crowd past what the detector handles in bounded time.
 */
export class PoseBoxesError extends ImageError {
  constructor(readonly boxes: number, readonly limit: number) {
    super(`the picture holds ${boxes} hands and faces for OpenPose's hand and face networks, more than ${limit}; crop it to fewer people, or use type=openpose (bodies only)`, 1);
  }
}

/** A picture so much taller than wide that OpenPose's scaling to 184 rows leaves no column (cv2.resize refuses it). */
export class PoseInputError extends ImageError {
  constructor(readonly width: number, readonly height: number) {
    super(`a ${width}x${height} picture scales to 184 rows and no column for OpenPose (at most 184 times taller than wide); crop it first`, 2);
  }
}

/** DWPose's networks gave what no person detector or pose model gives (past the bounds its post-processing keeps). */
export class DwposeOutputError extends ImageError {
  constructor(message: string) {
    super(message, 1);
  }
}
