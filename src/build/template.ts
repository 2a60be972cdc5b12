import { UsageError } from '../errors.js';

const PLACEHOLDER = /\{\{\s*([A-Za-z_][\w-]*)\s*\}\}/g;

/** The names a text refers to with {{name}}. */
export function placeholders(text: string): string[] {
  return [...text.matchAll(PLACEHOLDER)].map((m) => m[1]!);
}

/**
 * A manifest's `vars` with every {{name}} inside them filled in. Variables may use one another;
 * a cycle (a uses b, b uses a) is refused with the chain named, an unknown name with where it is.
 */
export function resolveVars(vars: Record<string, string>, where: string): Record<string, string> {
  const done = new Map<string, string>();
  const visit = (name: string, chain: string[]): string => {
    const known = done.get(name);
    if (known !== undefined) return known;
    if (chain.includes(name)) throw new UsageError(`${where}: the variables refer to each other in a cycle: ${[...chain.slice(chain.indexOf(name)), name].join(' -> ')}; break it`);
    const text = vars[name]!;
    const value = text.replace(PLACEHOLDER, (_, used: string) => {
      if (!(used in vars)) throw new UsageError(`${where}.${name}: {{${used}}} is not a variable (known: ${Object.keys(vars).join(', ') || 'none'})`);
      return visit(used, [...chain, name]);
    });
    done.set(name, value);
    return value;
  };
  for (const name of Object.keys(vars)) visit(name, []);
  return Object.fromEntries(done);
}

/** {{name}} in `text` replaced by its value; an unknown name is refused, naming where it was written. */
export function render(text: string, values: Record<string, string>, where: string): string {
  return text.replace(PLACEHOLDER, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new UsageError(`${where}: {{${name}}} is not a variable (known: ${Object.keys(values).join(', ') || 'none'})`);
    return value;
  });
}
