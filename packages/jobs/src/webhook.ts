// Webhook delivery from the outbox: JSON POST, 2xx means delivered, anything else (or no
// answer within the timeout) is retried with exponential backoff. Delivery is at least
// once: a receiver deduplicates on the X-PKI-Delivery header.
import { createHmac } from "node:crypto";
import type { Config } from "@pki/config";
import type { OutboxEvent, WebhookInventory } from "@pki/db";
import type { Clock } from "@pki/authority";
import type { Logger } from "@pki/logger";
import { webhookDeliveriesTotal, webhookOutboxPending } from "./metrics.ts";

const FIRST_RETRY_SECONDS = 30;

export interface DeliveryCounts {
  delivered: number;
  failed: number;
}

/** The delay before attempt n+1 after n failed attempts: 30 s, 60 s, 120 s … up to the configured bound. */
export function retryDelaySeconds(failedAttempts: number, maxBackoffSeconds: number): number {
  return Math.min(FIRST_RETRY_SECONDS * 2 ** Math.max(failedAttempts - 1, 0), maxBackoffSeconds);
}

export class WebhookSender {
  constructor(
    private readonly config: Config["scheduler"]["webhook"],
    private readonly inventory: WebhookInventory,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  get enabled(): boolean {
    return this.config.url !== undefined;
  }

  /** Sends every due event, batch by batch, until none is left due. */
  async deliverDue(maxBatches = 20): Promise<DeliveryCounts> {
    const counts: DeliveryCounts = { delivered: 0, failed: 0 };
    if (!this.config.url) return counts;
    for (let batch = 0; batch < maxBatches; batch++) {
      const events = await this.inventory.webhookOutbox.claimDue(this.clock.now(), this.config.timeoutMs * 2 + 5000);
      if (events.length === 0) break;
      for (const event of events) {
        if (await this.deliver(event)) counts.delivered++;
        else counts.failed++;
      }
    }
    webhookOutboxPending.set(await this.inventory.webhookOutbox.pendingCount());
    return counts;
  }

  private async deliver(event: OutboxEvent): Promise<boolean> {
    const body = JSON.stringify({ id: event.id.toString(), event: event.event, createdAt: event.createdAt.toISOString(), data: event.payload });
    const headers: Record<string, string> = { "content-type": "application/json", "user-agent": "pki-scheduler", "x-pki-event": event.event, "x-pki-delivery": event.id.toString() };
    if (this.config.secret) headers["x-pki-signature"] = `sha256=${createHmac("sha256", this.config.secret).update(body).digest("hex")}`;
    let problem: string;
    try {
      const response = await fetch(this.config.url!, { method: "POST", headers, body, signal: AbortSignal.timeout(this.config.timeoutMs), redirect: "error" });
      await response.arrayBuffer().catch(() => undefined);
      if (response.ok) {
        await this.inventory.webhookOutbox.markDelivered(event.id, this.clock.now());
        webhookDeliveriesTotal.inc({ outcome: "delivered" });
        return true;
      }
      problem = `HTTP ${response.status}`;
    } catch (error) {
      problem = (error as Error).cause ? `${(error as Error).message}: ${String(((error as Error).cause as Error).message ?? (error as Error).cause)}` : (error as Error).message;
    }
    const delay = retryDelaySeconds(event.attempts + 1, this.config.maxBackoffSeconds);
    const next = new Date(this.clock.now().getTime() + delay * 1000);
    await this.inventory.webhookOutbox.markFailed(event.id, problem, next);
    webhookDeliveriesTotal.inc({ outcome: "failed" });
    this.log.warn({ delivery: event.id.toString(), event: event.event, attempt: event.attempts + 1, problem, retryAt: next.toISOString() }, "webhook delivery failed; will retry");
    return false;
  }
}
