// Change notifications between processes (PostgreSQL LISTEN/NOTIFY), so a reader learns
// of a write at once instead of polling for it. Writers notify in the statement or
// transaction that writes (PostgreSQL delivers on commit, never for a rollback). Readers
// keep a slow poll as a safety net: a notification sent while a listener was reconnecting
// is lost.
import pg from "pg";

/** Channels, by what changed. Payloads are empty: a listener re-reads what it needs. */
export const CHANGE_CHANNELS = {
  ocspResponses: "pki_ocsp_responses",
  crls: "pki_crls",
  /** admin tokens, provisioners and their ACME settings (a trigger on their tables notifies) */
  credentials: "pki_credentials",
  /** ACME challenges waiting for a validator */
  acmeValidations: "pki_acme_validations",
} as const;
export type ChangeChannel = keyof typeof CHANGE_CHANNELS;

export interface ChangeWatch {
  /** false once the listening connection is gone: poll, and watch again later */
  readonly alive: boolean;
  close(): Promise<void>;
}

/** LISTENs on its own connection (not one of the pool's), with the pool's settings. */
export async function watchChanges(poolOptions: pg.PoolConfig, channel: ChangeChannel, onChange: () => void): Promise<ChangeWatch> {
  const client = new pg.Client({ ...poolOptions, connectionTimeoutMillis: poolOptions.connectionTimeoutMillis ?? 5000 });
  let alive = true;
  const lost = () => {
    alive = false;
  };
  client.on("error", lost);
  client.on("end", lost);
  client.on("notification", () => onChange());
  try {
    await client.connect();
    await client.query(`LISTEN ${CHANGE_CHANNELS[channel]}`);
  } catch (error) {
    await client.end().catch(() => {});
    throw error;
  }
  return {
    get alive() {
      return alive;
    },
    close: async () => {
      alive = false;
      await client.end().catch(() => {});
    },
  };
}

export interface ChangeSource {
  readonly kind: "postgresql" | "embedded";
  watch(channel: ChangeChannel, onChange: () => void): Promise<ChangeWatch | undefined>;
}

export interface FollowOptions {
  /** the poll interval when not listening (embedded database, listener lost) */
  pollMs: number;
  /** the poll interval while notifications arrive: only for one lost in a reconnect */
  safetyNetMs: number;
  onListenError?: (error: Error) => void;
}

/**
 * Keeps a reader current: runs `refresh` when a change to `channel` commits and on a timer
 * (every `pollMs` without a listener, every `safetyNetMs` with one), one run at a time,
 * with one more run when a change came during a run. A lost listener is replaced at the
 * next tick after `safetyNetMs`. `start` resolves once listening (or known not to).
 */
export class ChangeFollower {
  private timer: NodeJS.Timeout | undefined;
  private watch: ChangeWatch | undefined;
  private watching: Promise<void> | undefined;
  private lastWatchAttempt = 0;
  private lastRunAt = 0;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(
    private readonly source: ChangeSource,
    private readonly channel: ChangeChannel,
    private readonly refresh: () => Promise<void>,
    private readonly options: FollowOptions,
  ) {}

  async start(): Promise<void> {
    this.lastRunAt = Date.now();
    await this.listen();
    this.timer = setInterval(() => this.tick(), this.options.pollMs);
    this.timer.unref();
  }

  get listening(): boolean {
    return this.watch?.alive === true;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    void this.watch?.close();
  }

  private listen(): Promise<void> {
    this.lastWatchAttempt = Date.now();
    this.watching ??= this.source
      .watch(this.channel, () => this.run())
      .then(
        (watch) => {
          if (this.stopped) void watch?.close();
          else this.watch = watch;
        },
        (error: Error) => this.options.onListenError?.(error),
      )
      .finally(() => {
        this.watching = undefined;
      });
    return this.watching;
  }

  private tick(): void {
    const since = Date.now() - this.lastRunAt;
    if (!this.listening && this.source.kind === "postgresql" && Date.now() - this.lastWatchAttempt >= this.options.safetyNetMs) void this.listen();
    if (this.listening && since < this.options.safetyNetMs) return;
    this.run();
  }

  private run(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.lastRunAt = Date.now();
    this.running = this.refresh()
      .catch(() => {}) // the reader logs its own failures; the next run tries again
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.run();
        }
      });
  }
}
