// HTTPS requests to our API, trusting only the CA's root (no verification turned off).
import { request } from "node:https";
import { setTimeout as sleep } from "node:timers/promises";

export function httpsCall(url: string, ca: string, options: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: options.method ?? "GET",
        ca,
        headers: { ...(options.body ? { "content-type": "application/json", "content-length": String(Buffer.byteLength(options.body)) } : {}), ...options.headers },
        agent: false,
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      },
    );
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timeout")));
    if (options.body) req.write(options.body);
    req.end();
  });
}

export async function waitForHttps(url: string, ca: string, options: { timeoutMs?: number; alive?: () => boolean } = {}): Promise<number> {
  const t0 = performance.now();
  let last = "";
  while (performance.now() - t0 < (options.timeoutMs ?? 60_000)) {
    if (options.alive && !options.alive()) throw new Error(`the process exited before ${url} answered`);
    try {
      const r = await httpsCall(url, ca);
      if (r.status === 200) return performance.now() - t0;
      last = `HTTP ${r.status}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await sleep(50);
  }
  throw new Error(`${url} did not answer within ${options.timeoutMs ?? 60_000} ms (last: ${last})`);
}
