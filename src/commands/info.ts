import type { Command } from 'commander';
import { ImageIOError } from '../errors.js';
import { readGenerationMetadataFile } from '../image/metadata.js';
import { listForTerminal, terminalText } from './terminal-text.js';

export function defineInfo(cmd: Command): Command {
  return cmd
    .argument('<image>', 'PNG file')
    .option('--json', 'print the parameters as JSON')
    .action(async (path: string, opts: { json?: boolean }) => {
      const meta = readGenerationMetadataFile(path, 'info');
      if (opts.json) {
        process.stdout.write(`${jsonForTerminal(meta)}\n`);
        return;
      }
      switch (meta.kind) {
        case 'a1111':
          // The text is the file's: escape sequences in it must not reach the terminal.
          process.stdout.write(`${terminalText(meta.infotext, { keepNewlines: true })}\n`);
          return;
        case 'comfyui':
          process.stdout.write('ComfyUI workflow (the prompt and workflow graphs are in --json)\n');
          return;
        case 'unknown':
          throw new ImageIOError(`${path} has text chunks (${listForTerminal(meta.keywords)}) but no generation parameters diffuse understands`);
        case 'none':
          throw new ImageIOError(`${path} carries no generation parameters`);
      }
    });
}

/**
 * JSON escapes C0 controls but not DEL or the C1 range (U+0080-U+009F, where U+009B is an 8-bit
 * CSI some terminals obey) or the bidirectional overrides: those are escaped too, still valid JSON.
 */
function jsonForTerminal(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
