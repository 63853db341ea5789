/**
 * A small typed event emitter that runs in Node and browsers (node:events does not exist in the
 * browser bundle). One payload per event. A listener that throws never breaks the SDK's own
 * processing: the error goes to `onListenerError`.
 */
export type Listener<P> = (payload: P) => unknown;

export class Emitter<Events extends object> {
  private readonly listeners = new Map<keyof Events, Set<Listener<never>>>();

  constructor(private readonly onListenerError: (err: unknown, event: PropertyKey) => void = reportToConsole) {}

  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => this.off(event, listener);
  }

  once<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    const off = this.on(event, (payload) => {
      off();
      return listener(payload);
    });
    return off;
  }

  off<K extends keyof Events>(event: K, listener?: Listener<Events[K]>): void {
    if (!listener) {
      this.listeners.delete(event);
      return;
    }
    this.listeners.get(event)?.delete(listener as Listener<never>);
  }

  listenerCount(event: keyof Events): number {
    return this.listeners.get(event)?.size ?? 0;
  }

  /** Calls every listener synchronously, in registration order. */
  protected emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        const r = (listener as Listener<Events[K]>)(payload);
        if (r && typeof (r as Promise<unknown>).then === 'function') (r as Promise<unknown>).then(undefined, (err) => this.onListenerError(err, event));
      } catch (err) {
        this.onListenerError(err, event);
      }
    }
  }

  /** Calls every listener and waits for the promises they return; true when none failed. */
  protected async emitAndWait<K extends keyof Events>(event: K, payload: Events[K]): Promise<boolean> {
    const set = this.listeners.get(event);
    if (!set) return true;
    let ok = true;
    for (const listener of [...set]) {
      try {
        await (listener as Listener<Events[K]>)(payload);
      } catch (err) {
        ok = false;
        this.onListenerError(err, event);
      }
    }
    return ok;
  }

  protected removeAllListeners(): void {
    this.listeners.clear();
  }
}

function reportToConsole(err: unknown, event: PropertyKey): void {
  console.error(`[tether] listener for '${String(event)}' threw`, err);
}
