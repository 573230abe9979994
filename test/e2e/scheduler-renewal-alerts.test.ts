// Time travel through a certificate's life with the real scheduler: real SoftHSM token,
// real PostgreSQL, a real webhook receiver on 127.0.0.1. Auto-renewal at 2/3 of lifetime,
// expiry alerts at 7/3/1 days once each, issuer alerts and issuer health, and webhook
// retries while the receiver is down.
import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCsr, toPem } from "@pki/x509";
import type { ProvisionerRecord } from "@pki/db";
import { createLogger } from "@pki/logger";
import { registry } from "@pki/metrics";
import { createScheduler, type Scheduler } from "@pki/scheduler";
import { startTestCa, type TestCa } from "../support/harness.ts";
import { opensslCsr, opensslVerify } from "../support/tools.ts";
import { DAY, HOUR, TravelClock, startWebhookReceiver, type WebhookReceiver } from "../support/scheduler-kit.ts";

const SECRET = "webhook-secret-for-tests-0123456789";

describe("scheduler: renewal and expiry alerts over time", () => {
  const clock = new TravelClock(new Date("2026-11-23T12:00:00Z"));
  let ca: TestCa;
  let receiver: WebhookReceiver;
  let scheduler: Scheduler;
  const t0 = clock.now().getTime();

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    ca = await startTestCa({ clock, env: { PKI_WEBHOOK_URL: receiver.url, PKI_WEBHOOK_SECRET: SECRET, PKI_KEYRING_RELOAD_SECONDS: "0" } });
    scheduler = createScheduler({ runtime: ca.runtime, log: createLogger("silent") });
  });
  afterAll(async () => {
    await scheduler?.stop();
    await ca?.cleanup();
    await receiver?.close();
  });

  const issue = async (cn: string, ttlDays: number, autoRenew = false) => {
    const csr = parseCsr(opensslCsr({ subject: `/CN=${cn}`, sans: [`DNS:${cn}`] }).csrPem);
    return ca.runtime.authority.issue({ csr, profile: "mtls", ttlSeconds: Math.round(ttlDays * 86400), autoRenew, requester: { kind: "operator", actor: "test" } });
  };
  const runAt = async (ms: number) => {
    clock.set(new Date(ms));
    return scheduler.runDue();
  };
  const events = (event: string, id?: string) => receiver.received.filter((r) => r.body.event === event && (id === undefined || r.body.data.id === id || r.body.data.predecessorSerial === id));

  it("sends each expiry threshold once, skips thresholds a certificate never had ahead of it, and signs the webhook", async () => {
    const b = await issue("b.expiry.test", 10);
    const shortLived = await issue("short.expiry.test", 1);
    let results = await runAt(t0);
    expect(results.every((r) => r.ran && r.outcome === "ok")).toBe(true);
    expect(receiver.received).toEqual([]);

    await runAt(t0 + 3 * DAY + 60_000);
    expect(events("certificate.expiring", b.serial).map((e) => e.body.data.thresholdDays)).toEqual([7]);
    const [first] = events("certificate.expiring", b.serial);
    const expected = createHmac("sha256", SECRET).update(JSON.stringify(first!.body)).digest("hex");
    expect(first!.headers["x-pki-signature"]).toBe(`sha256=${expected}`);
    expect(first!.headers["x-pki-delivery"]).toBe(first!.body.id);

    // once per threshold: another run in the same window sends nothing new
    results = await runAt(t0 + 3 * DAY + HOUR);
    expect(events("certificate.expiring", b.serial)).toHaveLength(1);
    expect(results.find((r) => r.job === "expiry-alerts")?.counts).toMatchObject({ sent: 0 });

    await runAt(t0 + 7 * DAY + 60_000);
    await runAt(t0 + 9 * DAY + 60_000);
    await runAt(t0 + 9 * DAY + 2 * HOUR);
    expect(events("certificate.expiring", b.serial).map((e) => e.body.data.thresholdDays)).toEqual([7, 3, 1]);
    // a 24-hour certificate never had a day to go beyond its backdating: no alerts at all
    expect(events("certificate.expiring", shortLived.serial)).toEqual([]);
    expect(await registry.getSingleMetricAsString("pki_expiry_alerts_sent_total")).toMatch(/kind="certificate",alert="expiry-1d"} [1-9]/);
  });

  it("keeps alerts in the outbox while the webhook is down and delivers them with backoff after", async () => {
    clock.set(new Date(t0 + 10 * DAY));
    const e = await issue("e.expiry.test", 10);
    await runAt(t0 + 10 * DAY + 60_000);
    expect(events("certificate.expiring", e.serial)).toEqual([]);
    receiver.failWith = 503;
    // jump past two thresholds: only the most urgent one goes out, the other is marked passed
    const late = e.notAfter.getTime() - 12 * HOUR;
    const results = await runAt(late);
    expect(results.find((r) => r.job === "expiry-alerts")?.counts).toMatchObject({ sent: 1 });
    expect(receiver.refused).toBeGreaterThan(0);
    expect(await ca.inventory.webhookOutbox.pendingCount()).toBe(1);
    const [pending] = (await ca.inventory.webhookOutbox.list()).filter((o) => !o.deliveredAt);
    expect(pending!.lastError).toMatch(/503/);
    expect(pending!.nextAttemptAt.getTime()).toBeGreaterThan(late);
    const sent = await ca.inventory.alerts.sent("certificate", e.serial);
    expect(sent.map((s) => s.alert).sort()).toEqual(["expiry-1d", "expiry-3d", "expiry-7d"]);
    expect(sent.find((s) => s.alert === "expiry-3d")?.details).toEqual({ superseded: true });
    expect(sent.find((s) => s.alert === "expiry-7d")?.details).toEqual({ superseded: true });

    // still down at the next attempt: the attempt count grows, nothing is lost
    await runAt(pending!.nextAttemptAt.getTime() + 60_000);
    const again = (await ca.inventory.webhookOutbox.list()).find((o) => o.id === pending!.id)!;
    expect(again.attempts).toBeGreaterThanOrEqual(2);
    expect(again.deliveredAt).toBeNull();

    receiver.failWith = undefined;
    await runAt(again.nextAttemptAt.getTime() + 60_000);
    expect(await ca.inventory.webhookOutbox.pendingCount()).toBe(0);
    expect(events("certificate.expiring", e.serial).map((x) => x.body.data.thresholdDays)).toEqual([1]);
  });

  it("renews an auto-renew certificate at two thirds of its lifetime, once, links and announces the successor", async () => {
    clock.set(new Date(t0 + 20 * DAY));
    const a = await issue("a.renew.test", 30, true);
    const twoThirds = a.notBefore.getTime() + ((a.notAfter.getTime() - a.notBefore.getTime()) * 2) / 3;
    let results = await runAt(twoThirds - HOUR);
    expect(results.find((r) => r.job === "renewal")?.counts).toMatchObject({ renewed: 0 });
    expect((await ca.inventory.certificates.get(a.serial))!.successorSerial).toBeNull();

    results = await runAt(twoThirds + HOUR);
    expect(results.find((r) => r.job === "renewal")?.counts).toMatchObject({ due: 1, renewed: 1, announced: 1 });
    const predecessor = (await ca.inventory.certificates.get(a.serial))!;
    expect(predecessor.successorSerial).toMatch(/^[0-9a-f]+$/);
    const successor = (await ca.inventory.certificates.get(predecessor.successorSerial!))!;
    expect(successor).toMatchObject({ status: "valid", predecessorSerial: a.serial, autoRenew: true, subject: a.subject, sans: a.sans, profile: "mtls" });
    expect(Buffer.compare(successor.publicKeySpki, predecessor.publicKeySpki)).toBe(0);
    expect(successor.notAfter.getTime()).toBeGreaterThan(a.notAfter.getTime());

    const announced = events("certificate.renewed", a.serial);
    expect(announced).toHaveLength(1);
    expect(announced[0]!.body.data).toMatchObject({ predecessorSerial: a.serial, serial: successor.serial, href: `/v1/certificates/${successor.serial}` });
    const rootPem = toPem(ca.runtime.keyring.active().chain.at(-1)!);
    const intermediates = ca.runtime.keyring
      .active()
      .chain.slice(0, -1)
      .map((c) => toPem(c))
      .join("");
    const verify = opensslVerify(announced[0]!.body.data.certificate as string, rootPem, intermediates, ["-attime", String(Math.floor((twoThirds + HOUR) / 1000))]);
    expect(verify.stderr + verify.stdout).toMatch(/: OK/);

    // nothing renews twice, and the renewed predecessor raises no expiry alert
    results = await runAt(twoThirds + 2 * HOUR);
    expect(results.find((r) => r.job === "renewal")?.counts).toMatchObject({ renewed: 0, announced: 0 });
    await runAt(a.notAfter.getTime() - 12 * HOUR);
    expect(events("certificate.renewed", a.serial)).toHaveLength(1);
    expect(events("certificate.expiring", a.serial)).toEqual([]);

    const runs = await ca.inventory.scheduler.runs("renewal");
    expect(runs.every((r) => r.outcome === "ok" && r.endedAt !== null)).toBe(true);
    expect(runs.some((r) => r.counts?.renewed === 1)).toBe(true);
  });

  it("renews under the provisioner's current policy: a narrowed or disabled provisioner's certificates are skipped, not renewed", async () => {
    const audit = { actor: "test", action: "provisioner.create" };
    const narrowed = await ca.inventory.provisioners.create(
      { name: "narrowed", profiles: ["mtls"], names: ["DNS:a1.policy.test", "DNS:a2.policy.test"], maxTtlSeconds: 90 * 86400 },
      "tok-narrowed-0123456789abcdef",
      audit,
    );
    const disabled = await ca.inventory.provisioners.create({ name: "disabled", profiles: ["mtls"], names: ["DNS:b1.policy.test"], maxTtlSeconds: 90 * 86400 }, "tok-disabled-0123456789abcdef", audit);
    const enrol = (cn: string, provisioner: ProvisionerRecord) =>
      ca.runtime.authority.issue({
        csr: parseCsr(opensslCsr({ subject: `/CN=${cn}`, sans: [`DNS:${cn}`] }).csrPem),
        profile: "mtls",
        ttlSeconds: 9 * 86400,
        autoRenew: true,
        requester: { kind: "provisioner", actor: "test", provisioner },
      });
    const kept = await enrol("a1.policy.test", narrowed);
    const dropped = await enrol("a2.policy.test", narrowed);
    const orphan = await enrol("b1.policy.test", disabled);
    await ca.inventory.provisioners.update("narrowed", { names: ["DNS:a1.policy.test"] }, { actor: "test", action: "provisioner.update" });
    await ca.inventory.provisioners.setDisabled("disabled", true, { actor: "test", action: "provisioner.disable" });

    const results = await runAt(kept.notBefore.getTime() + 7 * DAY);
    expect(results.find((r) => r.job === "renewal")).toMatchObject({ outcome: "ok", counts: expect.objectContaining({ renewed: 1, skipped: 2, failed: 0 }) });
    expect((await ca.inventory.certificates.get(kept.serial))!.successorSerial).not.toBeNull();
    expect((await ca.inventory.certificates.get(dropped.serial))!.successorSerial).toBeNull();
    expect((await ca.inventory.certificates.get(orphan.serial))!.successorSerial).toBeNull();
  });

  it("flags an intermediate that would cut the longest leaf short long in advance, then alerts at 7/3/1 days", async () => {
    const intermediate = ca.runtime.keyring.active().record;
    const maxLeaf = ca.config().ca.maxTtlSeconds * 1000;
    const lead = ca.config().scheduler.issuerRotationLeadDays * DAY;
    const flaggedFrom = intermediate.notAfter.getTime() - maxLeaf - lead;
    await runAt(flaggedFrom - DAY);
    expect(events("issuer.health", intermediate.id)).toEqual([]);
    await runAt(flaggedFrom + HOUR);
    await runAt(flaggedFrom + 2 * HOUR);
    const health = events("issuer.health", intermediate.id);
    expect(health).toHaveLength(1);
    expect(health[0]!.body.data).toMatchObject({ kind: "issuer", hierarchy: "default", action: "pki issuers rotate --hierarchy default" });
    expect(flaggedFrom - t0).toBeGreaterThan(100 * DAY);

    for (const daysLeft of [7, 3, 1]) await runAt(intermediate.notAfter.getTime() - daysLeft * DAY + 60_000);
    expect(events("issuer.expiring", intermediate.id).map((e) => e.body.data.thresholdDays)).toEqual([7, 3, 1]);
    // delivery ids are unique: a receiver can deduplicate on them
    const ids = receiver.received.map((r) => r.body.id);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
