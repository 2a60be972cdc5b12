import { open, type FileHandle } from 'node:fs/promises';
import { parseSafetensorsHeader, safetensorsHeaderLength, type SafetensorsEntry, type SafetensorsHeader } from './safetensors-header.js';

/**
 * A safetensors file on disk, read one tensor at a time: only the header is held, so a
 * multi-gigabyte checkpoint costs its largest tensor in memory, never the whole file. The header
 * is validated (safetensors-header.ts) when the file is opened, before any tensor is read.
 */
export class SafetensorsFile {
  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    readonly header: SafetensorsHeader,
  ) {}

  /** Throws SafetensorsFormatError for a file that is not valid safetensors. */
  static async open(path: string): Promise<SafetensorsFile> {
    const handle = await open(path, 'r');
    try {
      const size = (await handle.stat()).size;
      const first8 = new Uint8Array(8);
      await handle.read(first8, 0, Math.min(8, size), 0);
      const length = safetensorsHeaderLength(first8, size);
      const json = new Uint8Array(length);
      await readFully(handle, json, 8);
      return new SafetensorsFile(path, handle, parseSafetensorsHeader(json, size));
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  entry(name: string): SafetensorsEntry | undefined {
    return this.header.entries.get(name);
  }

  /** The tensor's stored bytes (little-endian, C order). */
  async bytes(entry: SafetensorsEntry): Promise<Uint8Array> {
    const out = new Uint8Array(entry.end - entry.begin);
    await readFully(this.handle, out, this.header.dataStart + entry.begin);
    return out;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

async function readFully(handle: FileHandle, into: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await handle.read(into, done, into.length - done, position + done);
    // The header was checked against the size at open: a short read means the file shrank since.
    if (bytesRead === 0) throw new Error(`file ended at byte ${position + done} while reading ${into.length} bytes at ${position}`);
    done += bytesRead;
  }
}
