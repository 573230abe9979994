import { createHash } from "node:crypto";

export interface ValidationLimits {
  /** validations running at once in this process */
  running: number;
  /** validations of one account running at once */
  runningPerAccount: number;
  /** validations of one account running or waiting; beyond it reserve() refuses that account */
  pendingPerAccount: number;
  /** validations of one provisioner running or waiting; beyond it reserve() refuses that provisioner's accounts */
  pendingPerProvisioner: number;
}

/** Who a validation is for: its account, within its provisioner. */
export interface ValidationScope {
  account: string;
  provisioner: string;
}

export class ValidationLimitError extends Error {
  constructor(
    message: string,
    /** whose bound was reached: the requester's own account, or its whole provisioner */
    readonly scope: "account" | "provisioner",
  ) {
    super(message);
    this.name = "ValidationLimitError";
  }
}

/** A place for one validation, taken before the validation is recorded as started. */
export interface Reservation {
  /** Runs the validation once a running slot is free for it (at most once). */
  run<T>(fn: () => Promise<T>): Promise<T>;
  /** Gives the place back without running anything. */
  cancel(): void;
}

interface Account {
  key: string;
  running: number;
  /** reserved, not yet running (waiting for a slot, or not yet asked to run) */
  reserved: number;
  waiting: Array<() => void>;
  /** when it last got a running slot (a sequence number; 0: never) */
  lastServed: number;
}

interface Provisioner {
  key: string;
  pending: number;
  accounts: Map<string, Account>;
  lastServed: number;
}

const MAX_KEY_CHARS = 128;
const boundedKey = (key: string) => (key.length > MAX_KEY_CHARS ? createHash("sha256").update(key).digest("base64url") : key);

/**
 * Bounds the outbound connections validations make, and shares them fairly. Every
 * validation first reserves a place: an account may have `pendingPerAccount` validations
 * running or waiting and a provisioner `pendingPerProvisioner`, so one account (or one
 * provisioner's accounts) filling its bound is refused on its own while everybody else goes
 * on. A free running slot goes to the provisioner served longest ago, and within it to the
 * account served longest ago, so a requester whose targets stall waits for its own slots,
 * and one that queued a lot does not go ahead of one that just came. Only provisioners and accounts with pending
 * work have entries, so memory is bounded by the pending bounds.
 */
export class ValidationLimiter {
  private readonly provisioners = new Map<string, Provisioner>();
  private served = 0;
  private runningTotal = 0;
  private waitingTotal = 0;

  constructor(private readonly limits: ValidationLimits) {}

  get inFlight(): number {
    return this.runningTotal;
  }

  get queued(): number {
    return this.waitingTotal;
  }

  get accountsTracked(): number {
    let n = 0;
    for (const provisioner of this.provisioners.values()) n += provisioner.accounts.size;
    return n;
  }

  /** Reserves a place, or throws ValidationLimitError naming whose bound was reached. */
  reserve(scope: ValidationScope): Reservation {
    const provisionerKey = boundedKey(scope.provisioner);
    const accountKey = boundedKey(scope.account);
    const provisioner = this.provisioners.get(provisionerKey);
    const account = provisioner?.accounts.get(accountKey);
    if (account && account.running + account.reserved >= this.limits.pendingPerAccount) {
      throw new ValidationLimitError(`this account already has ${this.limits.pendingPerAccount} validations running or waiting; poll them, then retry`, "account");
    }
    if (provisioner && provisioner.pending >= this.limits.pendingPerProvisioner) {
      throw new ValidationLimitError(`this ACME provisioner already has ${this.limits.pendingPerProvisioner} validations running or waiting; retry shortly`, "provisioner");
    }
    const p = provisioner ?? this.addProvisioner(provisionerKey);
    const a = account ?? this.addAccount(p, accountKey);
    p.pending++;
    a.reserved++;
    let state: "reserved" | "running" | "done" = "reserved";
    return {
      run: async <T>(fn: () => Promise<T>): Promise<T> => {
        if (state !== "reserved") throw new Error("a reservation runs once");
        state = "running";
        await this.slotFor(p, a);
        try {
          return await fn();
        } finally {
          state = "done";
          this.finish(p, a, "running");
        }
      },
      cancel: () => {
        if (state !== "reserved") return;
        state = "done";
        this.finish(p, a, "reserved");
      },
    };
  }

  private addProvisioner(key: string): Provisioner {
    const provisioner: Provisioner = { key, pending: 0, accounts: new Map(), lastServed: 0 };
    this.provisioners.set(key, provisioner);
    return provisioner;
  }

  private addAccount(provisioner: Provisioner, key: string): Account {
    const account: Account = { key, running: 0, reserved: 0, waiting: [], lastServed: 0 };
    provisioner.accounts.set(key, account);
    return account;
  }

  private canRun(account: Account): boolean {
    return this.runningTotal < this.limits.running && account.running < this.limits.runningPerAccount;
  }

  /** Resolves when the account may run one more validation: at once if a slot is free and nobody waits, else in its turn. */
  private slotFor(provisioner: Provisioner, account: Account): Promise<void> {
    if (this.waitingTotal === 0 && this.canRun(account)) {
      this.start(provisioner, account);
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      account.waiting.push(resolve);
      this.waitingTotal++;
      this.dispatch();
    });
  }

  private start(provisioner: Provisioner, account: Account): void {
    account.reserved--;
    account.running++;
    this.runningTotal++;
    provisioner.lastServed = account.lastServed = ++this.served;
  }

  private finish(provisioner: Provisioner, account: Account, from: "running" | "reserved"): void {
    if (from === "running") {
      account.running--;
      this.runningTotal--;
    } else {
      account.reserved--;
    }
    provisioner.pending--;
    if (account.running === 0 && account.reserved === 0) provisioner.accounts.delete(account.key);
    if (provisioner.pending === 0) this.provisioners.delete(provisioner.key);
    this.dispatch();
  }

  /** Hands free running slots to waiters, each to the provisioner and then the account served longest ago. */
  private dispatch(): void {
    while (this.waitingTotal > 0 && this.runningTotal < this.limits.running) {
      let next: { provisioner: Provisioner; account: Account } | undefined;
      for (const provisioner of this.provisioners.values()) {
        if (next && provisioner.lastServed >= next.provisioner.lastServed) continue;
        const account = this.longestUnserved(provisioner);
        if (account) next = { provisioner, account };
      }
      if (!next) return;
      const wake = next.account.waiting.shift() as () => void;
      this.waitingTotal--;
      this.start(next.provisioner, next.account);
      wake();
    }
  }

  /** The provisioner's account with waiting work that may run now and was served longest ago. */
  private longestUnserved(provisioner: Provisioner): Account | undefined {
    let best: Account | undefined;
    for (const account of provisioner.accounts.values()) {
      if (account.waiting.length === 0 || !this.canRun(account)) continue;
      if (!best || account.lastServed < best.lastServed) best = account;
    }
    return best;
  }
}
