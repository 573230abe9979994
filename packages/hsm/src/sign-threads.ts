// Signatures on worker threads. pkcs11js offers C_Sign in libuv's pool but C_SignInit only
// synchronously, and SoftHSM does real work there (it unwraps the key and rebuilds it for
// OpenSSL): a profile of the API under issuance load put C_SignInit alone at ~9% of the
// event loop, and the all-in-one server pays it three times a certificate (the certificate
// and two OCSP responses). Here both calls run on threads of their own.
//
// A PKCS#11 library is loaded once per process and its sessions, login and object handles
// belong to the process, not to a thread: each thread loads the same library (the same
// mapping), finds it initialised, and signs on the session and key handles it is given.
// Sessions, login and recovery stay with the Token on the main thread.
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";

/** The thread's code, plain CommonJS so it needs no TypeScript loader. */
const THREAD_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const pkcs11js = require(workerData.pkcs11js);
const lib = new pkcs11js.PKCS11();
lib.load(workerData.modulePath);
try {
  lib.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
} catch (error) {
  // the main thread initialised the library for the whole process
  if (!/CKR_CRYPTOKI_ALREADY_INITIALIZED/.test(String(error && error.message))) throw error;
}
const asBuffer = (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
const output = Buffer.alloc(1024);
// One request is a chain: signatures made one after another on one session, so a session
// carries many signatures per trip to the thread and back.
const signChain = ({ id, session, key, mechanism, data }) => {
  const sessionHandle = asBuffer(session);
  const keyHandle = asBuffer(key);
  const results = data.map((bytes) => {
    try {
      lib.C_SignInit(sessionHandle, { mechanism }, keyHandle);
      return new Uint8Array(lib.C_Sign(sessionHandle, asBuffer(bytes), output));
    } catch (error) {
      return String(error && error.message);
    }
  });
  return { id, results };
};
parentPort.on("message", (batch) => parentPort.postMessage(batch.map(signChain)));
`;

interface SignRequest {
  id: number;
  session: Uint8Array;
  key: Uint8Array;
  mechanism: number;
  data: Uint8Array[];
}

interface SignAnswer {
  id: number;
  /** per signature: its bytes, or the library's error message */
  results?: Array<Uint8Array | string>;
  /** the whole request failed */
  error?: string;
}

interface Pending {
  resolve(results: Array<Buffer | Error>): void;
  reject(error: Error): void;
}

interface SignThread {
  worker: Worker;
  /** ids of the requests posted to this thread and not answered yet */
  inFlight: Set<number>;
  lastUsed: number;
}

/**
 * A thread with nothing to sign for this long stops, so an idle server carries no thread
 * heaps (~5 MB each); the first signature after a quiet spell waits for a thread to start
 * again (~60 ms on a busy 2-core machine).
 */
const IDLE_STOP_MS = 10_000;

const STOPPED = "CKR_CRYPTOKI_NOT_INITIALIZED: the signing threads are stopped";

/** Threads that sign for one loaded PKCS#11 library, started on first use. */
export class SignThreads {
  private threads: SignThread[] = [];
  private readonly pending = new Map<number, Pending>();
  private next = 0;
  private nextId = 0;
  private closed = false;
  /** requests of this tick, posted together: every message wakes a thread, which costs more than a signature's copy */
  private queued: SignRequest[] = [];
  private idleCheck: NodeJS.Timeout | undefined;
  /** requests (chains) posted to the threads, and the signatures they carried */
  readonly posted = { chains: 0, signatures: 0 };

  constructor(
    private readonly modulePath: string,
    private readonly count = Math.max(1, Math.min(4, availableParallelism())),
    private readonly idleStopMs = IDLE_STOP_MS,
  ) {}

  /** Threads started and not yet stopped. */
  running(): number {
    return this.threads.length;
  }

  /**
   * C_SignInit + C_Sign of `data` with `mechanism` (no parameters: CKM_ECDSA, CKM_RSA_PKCS)
   * on a session no other signature uses meanwhile. Errors carry the library's CKR_ name.
   */
  async sign(session: Buffer, key: Buffer, mechanism: number, data: Buffer): Promise<Buffer> {
    const [result] = await this.signChain(session, key, mechanism, [data]);
    if (result instanceof Error) throw result;
    return result!;
  }

  /**
   * Signs each of `data` in turn on one session (see `sign`), in one trip to a thread: a
   * result per input, a signature or the error the library gave for that one.
   */
  signChain(session: Buffer, key: Buffer, mechanism: number, data: Buffer[]): Promise<Array<Buffer | Error>> {
    if (this.closed) return Promise.reject(new Error(STOPPED));
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // Exact copies: a Buffer is often a slice of a shared 8 KiB pool, which posting would copy whole.
      this.queued.push({ id, session: new Uint8Array(session), key: new Uint8Array(key), mechanism, data: data.map((d) => new Uint8Array(d)) });
      if (this.queued.length === 1) queueMicrotask(() => this.flush());
    });
  }

  /** Posts this tick's requests, their signatures split evenly over the threads. */
  private flush(): void {
    const batch = this.queued;
    this.queued = [];
    if (this.closed) {
      for (const request of batch) this.settle({ id: request.id, error: STOPPED });
      return;
    }
    const signatures = batch.reduce((total, request) => total + request.data.length, 0);
    this.posted.chains += batch.length;
    this.posted.signatures += signatures;
    const share = Math.ceil(signatures / Math.min(this.count, batch.length));
    let part: SignRequest[] = [];
    let inPart = 0;
    for (const [index, request] of batch.entries()) {
      part.push(request);
      inPart += request.data.length;
      if (inPart < share && index < batch.length - 1) continue;
      const thread = this.thread();
      for (const posted of part) thread.inFlight.add(posted.id);
      thread.lastUsed = performance.now();
      thread.worker.postMessage(part);
      part = [];
      inPart = 0;
    }
  }

  /** Stops the threads; signatures still pending fail. */
  close(): void {
    this.closed = true;
    clearInterval(this.idleCheck);
    for (const thread of this.threads) void thread.worker.terminate();
    this.threads = [];
  }

  private thread(): SignThread {
    if (this.threads.length < this.count) this.threads.push(this.start());
    this.idleCheck ??= setInterval(() => this.stopIdle(), this.idleStopMs / 3).unref();
    const thread = this.threads[this.next++ % this.threads.length]!;
    return thread;
  }

  private settle(answer: SignAnswer): void {
    const pending = this.pending.get(answer.id);
    if (!pending) return;
    this.pending.delete(answer.id);
    if (!answer.results) pending.reject(new Error(answer.error ?? "the signing thread gave no answer"));
    else pending.resolve(answer.results.map((result) => (typeof result === "string" ? new Error(result) : Buffer.from(result.buffer, result.byteOffset, result.byteLength))));
  }

  private stopIdle(): void {
    const now = performance.now();
    for (const thread of this.threads) {
      if (thread.inFlight.size > 0 || now - thread.lastUsed < this.idleStopMs) continue;
      this.threads = this.threads.filter((t) => t !== thread);
      void thread.worker.terminate();
    }
    if (this.threads.length === 0) {
      clearInterval(this.idleCheck);
      this.idleCheck = undefined;
    }
  }

  private start(): SignThread {
    const pkcs11js = createRequire(import.meta.url).resolve("pkcs11js");
    const worker = new Worker(THREAD_SOURCE, {
      eval: true,
      workerData: { pkcs11js, modulePath: this.modulePath },
      // it holds a few buffers at a time: a small heap keeps each thread's memory small
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 },
    });
    // The threads never keep the process alive; they stop with it or with close().
    worker.unref();
    const thread: SignThread = { worker, inFlight: new Set(), lastUsed: performance.now() };
    const failAll = (error: Error) => {
      for (const id of thread.inFlight) this.settle({ id, error: error.message });
      thread.inFlight.clear();
      this.threads = this.threads.filter((t) => t !== thread);
    };
    worker.on("message", (answers: SignAnswer[]) => {
      thread.lastUsed = performance.now();
      for (const answer of answers) {
        thread.inFlight.delete(answer.id);
        this.settle(answer);
      }
    });
    worker.on("error", (error) => failAll(new Error(`CKR_GENERAL_ERROR: a signing thread failed: ${error.message}`, { cause: error })));
    worker.on("exit", () => failAll(new Error("CKR_GENERAL_ERROR: a signing thread stopped")));
    return thread;
  }
}
