import { EmbeddingError } from './embedding-error.js';

/**
 * A pickle READER, not an unpickler: it interprets the data-building opcodes (containers,
 * strings, numbers, memo) and hands every reference to a global to the caller's allow-list.
 * Allow-listed globals are plain TypeScript functions producing inert values; anything else
 * (os.system, builtins.eval, arbitrary classes) is refused when the GLOBAL opcode names it,
 * before any argument is even built. Nothing in a pickle can make this code run other code.
 */

export class PickleTuple {
  constructor(readonly items: readonly PickleValue[]) {}
}

/** An instance of an allow-listed class (NEWOBJ), with the state BUILD gave it. */
export class PickleObject {
  state: PickleValue = null;

  constructor(
    readonly className: string,
    readonly args: readonly PickleValue[],
  ) {}
}

/** Base of the values an allow-listed function builds (tensors, storages): opaque to the reader. */
export abstract class HostValue {}

/** What an allow-listed global is: a marker value, a function REDUCE may call, or a class NEWOBJ may create. */
export interface SafeGlobal {
  readonly qualifiedName: string;
  readonly call?: (args: readonly PickleValue[]) => PickleValue;
  readonly construct?: boolean;
  /** Free-form data for the caller (e.g. the dtype a torch storage class stands for). */
  readonly tag?: unknown;
}

export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleValue[]
  | PickleTuple
  | Map<PickleValue, PickleValue>
  | Set<PickleValue>
  | PickleObject
  | SafeGlobal
  | HostValue;

export interface PickleHooks {
  /** The allow-list: undefined refuses the global. */
  resolveGlobal(module: string, name: string): SafeGlobal | undefined;
  persistentLoad?(pid: PickleValue): PickleValue;
}

const MARK = Symbol('mark');
type StackItem = PickleValue | typeof MARK;

function fail(message: string): never {
  throw new EmbeddingError(`pickle: ${message}`);
}

function isSafeGlobal(value: unknown): value is SafeGlobal {
  return typeof value === 'object' && value !== null && 'qualifiedName' in value;
}

export function readPickle(bytes: Uint8Array, hooks: PickleHooks): PickleValue {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: StackItem[] = [];
  const memo = new Map<number, PickleValue>();
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let pos = 0;

  const need = (n: number): number => {
    if (n < 0 || pos + n > bytes.length) fail(`data runs past the end at byte ${pos} (truncated?)`);
    const at = pos;
    pos += n;
    return at;
  };
  const u8 = (): number => bytes[need(1)]!;
  const u16 = (): number => view.getUint16(need(2), true);
  const u32 = (): number => view.getUint32(need(4), true);
  const u64 = (): number => {
    const v = view.getBigUint64(need(8), true);
    if (v > BigInt(bytes.length)) fail(`length ${v} exceeds the data`);
    return Number(v);
  };
  const take = (n: number): Uint8Array => bytes.subarray(need(n), pos);
  const text = (n: number): string => {
    try {
      return utf8.decode(take(n));
    } catch {
      fail(`invalid UTF-8 string at byte ${pos}`);
    }
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail('unterminated GLOBAL name');
    return latin1.decode(take(end - pos + 1)).slice(0, -1);
  };
  const pop = (): PickleValue => {
    const v = stack.pop();
    if (v === undefined || v === MARK) fail(`stack underflow at byte ${pos}`);
    return v;
  };
  const top = (): PickleValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) fail(`stack underflow at byte ${pos}`);
    return v;
  };
  const popMark = (): PickleValue[] => {
    const at = stack.lastIndexOf(MARK);
    if (at < 0) fail(`MARK missing at byte ${pos}`);
    const items = stack.splice(at) as PickleValue[];
    items.shift();
    return items;
  };
  const global = (module: string, name: string): SafeGlobal => {
    const hit = hooks.resolveGlobal(module, name);
    if (!hit) fail(`refusing to load: the file references ${module}.${name}, which is not tensor data (it could run code)`);
    return hit;
  };
  const dictOf = (v: PickleValue): Map<PickleValue, PickleValue> => {
    if (!(v instanceof Map)) fail(`SETITEM on a non-dict at byte ${pos}`);
    return v;
  };
  const listOf = (v: PickleValue): PickleValue[] => {
    if (!Array.isArray(v)) fail(`APPEND on a non-list at byte ${pos}`);
    return v;
  };
  const setItems = (dict: Map<PickleValue, PickleValue>, items: PickleValue[]): void => {
    if (items.length % 2) fail('odd number of dict items');
    for (let i = 0; i < items.length; i += 2) dict.set(items[i]!, items[i + 1]!);
  };

  for (;;) {
    const opAt = pos;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail('unsupported pickle protocol');
        break;
      case 0x95: // FRAME: a length hint only
        u64();
        break;
      case 0x2e: // STOP
        return pop();
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x30: // POP
        stack.pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(view.getInt32(need(4), true));
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: { // LONG1: little-endian two's complement
        const n = u8();
        const raw = take(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(raw[i]!);
        if (n > 0 && raw[n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        stack.push(view.getFloat64(need(8), false));
        break;
      case 0x58: // BINUNICODE
        stack.push(text(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text(u8()));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(text(u64()));
        break;
      case 0x55: // SHORT_BINSTRING (Python 2 str)
        stack.push(latin1.decode(take(u8())));
        break;
      case 0x54: // BINSTRING
        stack.push(latin1.decode(take(u32())));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8()).slice());
        break;
      case 0x42: // BINBYTES
        stack.push(take(u32()).slice());
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(new PickleTuple([]));
        break;
      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        break;
      case 0x74: // TUPLE
        stack.push(new PickleTuple(popMark()));
        break;
      case 0x85: // TUPLE1
        stack.push(new PickleTuple([pop()]));
        break;
      case 0x86: { // TUPLE2
        const b = pop();
        stack.push(new PickleTuple([pop(), b]));
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop();
        const b = pop();
        stack.push(new PickleTuple([pop(), b, c]));
        break;
      }
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x64: { // DICT
        const dict = new Map<PickleValue, PickleValue>();
        setItems(dict, popMark());
        stack.push(dict);
        break;
      }
      case 0x61: { // APPEND
        const v = pop();
        listOf(top()).push(v);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        listOf(top()).push(...items);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop();
        const k = pop();
        dictOf(top()).set(k, v);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        setItems(dictOf(top()), items);
        break;
      }
      case 0x90: { // ADDITEMS
        const items = popMark();
        const set = top();
        if (!(set instanceof Set)) fail('ADDITEMS on a non-set');
        for (const item of items) set.add(item);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: { // LONG_BINGET
        const key = op === 0x68 ? u8() : u32();
        if (!memo.has(key)) fail(`memo key ${key} unset at byte ${opAt}`);
        stack.push(memo.get(key)!);
        break;
      }
      case 0x63: { // GLOBAL "module\nname\n"
        const module = line();
        stack.push(global(module, line()));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        stack.push(global(module, name));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const fn = pop();
        if (!isSafeGlobal(fn) || !fn.call) fail(`REDUCE target at byte ${opAt} is not an allowed function`);
        if (!(args instanceof PickleTuple)) fail(`REDUCE arguments at byte ${opAt} are not a tuple`);
        stack.push(fn.call(args.items));
        break;
      }
      case 0x81: { // NEWOBJ
        const args = pop();
        const cls = pop();
        if (!isSafeGlobal(cls) || !cls.construct) fail(`NEWOBJ target at byte ${opAt} is not an allowed class`);
        if (!(args instanceof PickleTuple)) fail(`NEWOBJ arguments at byte ${opAt} are not a tuple`);
        stack.push(new PickleObject(cls.qualifiedName, args.items));
        break;
      }
      case 0x62: { // BUILD: only records state on inert objects, never calls __setstate__
        const state = pop();
        const target = top();
        if (!(target instanceof PickleObject)) fail(`BUILD at byte ${opAt} targets something other than an allowed object`);
        target.state = state;
        break;
      }
      case 0x51: { // BINPERSID
        if (!hooks.persistentLoad) fail('persistent ids are not allowed here');
        stack.push(hooks.persistentLoad(pop()));
        break;
      }
      default:
        fail(`unsupported opcode 0x${op.toString(16).padStart(2, '0')} at byte ${opAt}`);
    }
  }
}
