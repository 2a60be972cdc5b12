/**
 * A signal that aborts when any of its parents does, with that parent's reason, and that can
 * also be aborted on its own (timeouts, a sibling's failure).
 *
 * Used instead of AbortSignal.any so the lifetime is explicit: the parents' listeners hold the
 * child strongly while a transfer runs (Node tracks AbortSignal.any's children weakly), and
 * dispose() removes them afterwards, so a long-lived user signal does not collect one listener
 * per request.
 */
export interface LinkedSignal {
  readonly signal: AbortSignal;
  abort(reason: unknown): void;
  dispose(): void;
}

export function linkSignals(...parents: (AbortSignal | undefined)[]): LinkedSignal {
  const controller = new AbortController();
  const listeners: [AbortSignal, () => void][] = [];
  for (const parent of parents) {
    if (!parent) continue;
    if (parent.aborted) {
      controller.abort(parent.reason);
      break;
    }
    const forward = (): void => controller.abort(parent.reason);
    parent.addEventListener('abort', forward, { once: true });
    listeners.push([parent, forward]);
  }
  return {
    signal: controller.signal,
    abort: (reason) => controller.abort(reason),
    dispose: () => {
      for (const [parent, forward] of listeners) parent.removeEventListener('abort', forward);
    },
  };
}
