import { crc32 } from '../../src/image/png-text.js';
import { ZipArchive } from '../../src/text/zip-archive.js';

/**
 * torch.save archives edited at test time instead of committed twice: a stored (uncompressed) zip
 * writer, and A1111's `{'state_dict': <the file's dict>}` wrapper put around a saved state dict.
 */

/** A zip of `entries` stored without compression, as torch.save writes its archives. */
export function storedZip(entries: ReadonlyArray<[string, Uint8Array]>): Buffer {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let at = 0;
  for (const [name, data] of entries) {
    const nameBytes = Buffer.from(name, 'utf8');
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    const entry = Buffer.alloc(46);
    entry.writeUInt32LE(0x02014b50, 0);
    entry.writeUInt16LE(20, 4);
    entry.writeUInt16LE(20, 6);
    entry.writeUInt32LE(crc, 16);
    entry.writeUInt32LE(data.length, 20);
    entry.writeUInt32LE(data.length, 24);
    entry.writeUInt16LE(nameBytes.length, 28);
    entry.writeUInt32LE(at, 42);
    locals.push(local, nameBytes, Buffer.from(data));
    central.push(entry, nameBytes);
    at += local.length + nameBytes.length + data.length;
  }
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(at, 16);
  return Buffer.concat([...locals, directory, end]);
}

/**
 * The torch.save archive `bytes` with its pickled object X replaced by {'state_dict': X}, as A1111's
 * training scripts save: PROTO, EMPTY_DICT, the key, X's opcodes, SETITEM, STOP. X's memo indices stay
 * as they were (the wrapper memoizes nothing).
 */
export function wrapInStateDict(bytes: Uint8Array): Buffer {
  const zip = new ZipArchive(bytes);
  try {
    const entries = zip.names.map((name): [string, Uint8Array] => {
      const data = zip.read(name);
      if (!name.endsWith('/data.pkl')) return [name, data];
      if (data[0] !== 0x80 || data[data.length - 1] !== 0x2e) throw new Error(`${name} is not a protocol-2+ pickle ending in STOP`);
      const key = Buffer.from('state_dict');
      const keyLength = Buffer.alloc(4);
      keyLength.writeUInt32LE(key.length);
      return [name, Buffer.concat([data.subarray(0, 2), Buffer.from('}X'), keyLength, key, data.subarray(2, -1), Buffer.from('s.')])];
    });
    return storedZip(entries);
  } finally {
    zip.close();
  }
}
