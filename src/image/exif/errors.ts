import { ImageError } from '../errors.js';

/** An EXIF block or the container holding it is malformed. */
export class InvalidExifError extends ImageError {
  constructor(detail: string) {
    super(`malformed EXIF metadata: ${detail}`, 1);
  }
}
