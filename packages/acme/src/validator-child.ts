// The keyless validator as a child of an API process (PKI_ACME_VALIDATOR=child, the
// default): started on the first challenge to validate, so a CA without ACME traffic
// carries no extra process, and restarted if it dies. Its environment holds this process's
// validation and database settings and nothing secret besides the database URL.
import { type ChildProcess, fork } from "node:child_process";
import { type Config, validatorEnvironment } from "@pki/config";
import type { Logger } from "@pki/logger";
import { WAKE_MESSAGE } from "./validator-process.ts";

export class ValidatorChild {
  private child: ChildProcess | undefined;
  private stopped = false;

  private readonly execArgv: string[];

  constructor(
    /** the module the child runs: apps/acme-validator's main, or its bundled file */
    private readonly entry: string,
    private readonly config: Config,
    private readonly log: Logger,
  ) {
    // A TypeScript entry needs tsx, which a parent run by another loader (a test runner) does not pass on.
    const needsTsx = entry.endsWith(".ts") && !process.execArgv.some((arg) => arg.includes("tsx"));
    this.execArgv = needsTsx ? ["--import", "tsx"] : process.execArgv;
  }

  /** Tells the validator a challenge is waiting, starting it first if it is not running. */
  wake(): void {
    if (this.stopped) return;
    const child = this.child ?? this.start();
    if (child.connected) child.send(WAKE_MESSAGE, (error) => error && this.log.warn({ err: error }, "could not wake the ACME validator; it polls"));
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private start(): ChildProcess {
    const child = fork(this.entry, [], { env: validatorEnvironment(this.config), execArgv: this.execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.child = child;
    child.on("exit", (code, signal) => {
      if (this.child === child) this.child = undefined;
      if (this.stopped) return;
      // a new one claims what was waiting (a second later: a crash loop costs one start a second)
      this.log.warn({ code, signal }, "the ACME validator stopped; starting another");
      setTimeout(() => this.wake(), 1000).unref();
    });
    child.on("error", (error) => this.log.error({ err: error }, "the ACME validator failed"));
    return child;
  }

  stop(): void {
    this.stopped = true;
    this.child?.kill("SIGTERM");
  }
}
