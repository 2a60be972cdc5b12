/**
 * A1111's "extra networks" in prompts: `<lora:name:1>`, `<hypernet:name:0.6>`, any `<kind:args>`
 * (modules/extra_networks.py: the pattern `<(\w+):([^>]+)>`, arguments split at ':', `key=value`
 * arguments named, the rest positional). A1111 takes them out of the positive prompt before the
 * prompt is parsed, every kind alike, and reads the networks from them; the negative prompt keeps
 * its text. The image's infotext keeps the prompt as written, tags included.
 */

export interface ExtraNetworkTag {
  /** `lora`, `hypernet`, ... */
  kind: string;
  /** The arguments as written, e.g. ['name', '0.8', 'unet=0.5']. */
  items: string[];
  positional: string[];
  named: Record<string, string>;
}

const TAG = /<(\w+):([^>]+)>/g;

/** The prompt without its tags (A1111's parse_prompt: each tag replaced by nothing), and the tags in order. */
export function extractExtraNetworks(prompt: string): { prompt: string; tags: ExtraNetworkTag[] } {
  const tags: ExtraNetworkTag[] = [];
  const stripped = prompt.replace(TAG, (_, kind: string, args: string) => {
    const items = args.split(':');
    const positional: string[] = [];
    const named: Record<string, string> = {};
    for (const item of items) {
      // Python's item.split('=', 2) has two parts only for exactly one '='.
      const parts = item.split('=');
      if (parts.length === 2) named[parts[0]!] = parts[1]!;
      else positional.push(item);
    }
    tags.push({ kind, items, positional, named });
    return '';
  });
  return { prompt: stripped, tags };
}

/** The prompt as the text encoder reads it: every extra-network tag removed. */
export function withoutExtraNetworks(prompt: string): string {
  return prompt.replace(TAG, '');
}
