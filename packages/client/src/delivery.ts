type Timer = ReturnType<typeof setTimeout>;

/** How long a fresh handle waits for the app to listen before delivering anyway (RoomHost.settings). */
export const DEFAULT_DELIVERY_HOLD_MS = 2000;

/**
 * When a room starts handing its stream (its first state, then its events) to the app.
 *
 * Why it waits: `const room = await client.join(code); room.on('event', …)` attaches after the
 * join resolved, and a join's ack often arrives in the same read as the events behind it (a bursty
 * link, a busy room), which the SDK parses before any continuation of the caller runs; React-style
 * code attaches in an effect, later still. So a fresh handle is 'paused': it applies and emits
 * nothing until the app listens. The first stream listener makes it 'starting', and it flows one
 * macrotask later, so that every listener attached in that task (through any number of awaits of
 * settled promises) sees the first state and then every event from joinSeq + 1. An app that never
 * listens gets delivery anyway `holdMs` after the first state (its getters would otherwise stay at
 * the join's state, and the held events would pile up). Once flowing, it flows for good.
 */
export class DeliveryGate {
  private state: 'paused' | 'starting' | 'flowing' = 'paused';
  private timer: Timer | undefined;
  /** The app has not been shown the current state yet. */
  private stateOwed = false;

  constructor(
    private readonly holdMs: () => number,
    /** Flowing now: show the owed state (when `showState`), then release what is held. */
    private readonly onStart: (showState: boolean) => void,
  ) {}

  get flowing(): boolean {
    return this.state === 'flowing';
  }

  /** The app attached a stream listener; `hasState`: a state is in (and held) already. */
  listening(hasState: boolean): void {
    if (this.state !== 'paused') return;
    if (!hasState) {
      // Listening before the first state: nothing was held, deliver as things come.
      this.state = 'flowing';
      return;
    }
    this.state = 'starting';
    this.arm(0);
  }

  /** The first state is in: the hold's deadline starts (unless the app listens already). */
  firstState(): void {
    if (this.state !== 'paused') return;
    const holdMs = this.holdMs();
    if (Number.isFinite(holdMs)) this.arm(Math.max(0, holdMs));
  }

  /** A state replaced the room's: true to show it now, false when it is owed until flowing. */
  stateReplaced(): boolean {
    if (this.state === 'flowing') return true;
    this.stateOwed = true;
    return false;
  }

  close(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(ms: number): void {
    this.close();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.state === 'flowing') return;
      this.state = 'flowing';
      const owed = this.stateOwed;
      this.stateOwed = false;
      this.onStart(owed);
    }, ms);
  }
}
