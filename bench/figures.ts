// The table: one small function per figure, each returning
// {value, unit, reference, ratio, target, met} from the measurements of this run.
import { isUnavailable, type Measurement, type Result } from "./lib/types.ts";

export interface Row {
  id: string;
  kind: "ours" | "peer" | "ceiling";
  name: string;
  value: number | null;
  unit: string;
  /** the same-run references and ratios, in words */
  reference: string;
  /** the first reference's ratio (higher is better for ours) */
  ratio: number | null;
  target: string;
  /** null: no target, or not measurable */
  met: boolean | null;
  /** the figure the issue quotes for a 2-core machine of this kind, for calibration */
  issueFigure?: string;
  note?: string;
  unavailable?: string;
}

type M = Map<string, Result>;

const get = (m: M, id: string): Measurement | undefined => {
  const r = m.get(id);
  return r && !isUnavailable(r) ? r : undefined;
};
const why = (m: M, id: string): string => {
  const r = m.get(id);
  if (!r) return "not measured in this run (its group did not run or did not report it)";
  return isUnavailable(r) ? r.unavailable : "";
};
const fmt = (v: number, unit: string) => {
  const n = Math.abs(v) >= 100 ? Math.round(v).toLocaleString("en-US") : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
  return `${n} ${unit}`;
};
const ms = (d: Record<string, unknown> | undefined, key: string) => (typeof d?.[key] === "number" ? (d[key] as number) : undefined);

function unavailableRow(base: Omit<Row, "value" | "reference" | "ratio" | "met" | "unavailable">, reason: string): Row {
  return { ...base, value: null, reference: "", ratio: null, met: null, unavailable: reason };
}

/** A peer or ceiling: no target; ratio to another same-run figure where one makes sense. */
function plain(m: M, id: string, kind: Row["kind"], name: string, issueFigure: string | undefined, vs?: { id: string; label: string }): Row {
  const x = get(m, id);
  const base = { id, kind, name: x?.label ?? name, unit: x?.unit ?? "", target: "—", ...(issueFigure ? { issueFigure } : {}) };
  if (!x) return unavailableRow(base, why(m, id));
  const ref = vs ? get(m, vs.id) : undefined;
  const ratio = ref ? x.value / ref.value : null;
  return {
    ...base,
    value: x.value,
    reference: ref ? `${vs!.label} ${fmt(ref.value, ref.unit)}` : "—",
    ratio,
    met: null,
    note: describe(x),
  };
}

function describe(x: Measurement): string | undefined {
  const d = x.details ?? {};
  const parts: string[] = [];
  for (const key of ["p50", "p95", "p99", "max"] as const) if (typeof d[key] === "number") parts.push(`${key} ${(d[key] as number).toFixed(2)} ms`);
  if (typeof d.rssMB === "number") parts.push(`peak RSS ${Math.round(d.rssMB as number)} MB`);
  if (typeof d.errors === "number" && d.errors > 0) parts.push(`${d.errors} failed requests`);
  if (typeof d.note === "string") parts.push(d.note);
  return parts.length ? parts.join("; ") : undefined;
}

/** Throughput figure of ours against a peer (×need) and a ceiling (fraction). */
function throughput(
  m: M,
  o: { id: string; name: string; peer: { id: string; label: string; need: number; fallback?: string }; ceiling?: { id: string; label: string; need: number }; p99Below?: number; target: string },
): Row {
  const x = get(m, o.id);
  const base = { id: o.id, kind: "ours" as const, name: x?.label ?? o.name, unit: x?.unit ?? "", target: o.target };
  if (!x) return unavailableRow(base, why(m, o.id));
  let peer = get(m, o.peer.id);
  if (!peer && o.peer.fallback && get(m, o.peer.fallback)) {
    peer = get(m, o.peer.fallback);
    o = { ...o, peer: { ...o.peer, label: `cfssl ocspserve POST (its GET: ${why(m, o.peer.id)})` } };
  }
  const ceiling = o.ceiling ? get(m, o.ceiling.id) : undefined;
  const refs: string[] = [];
  const checks: boolean[] = [];
  let ratio: number | null = null;
  if (peer) {
    ratio = x.value / peer.value;
    refs.push(`${ratio.toFixed(2)}× ${o.peer.label} (${fmt(peer.value, peer.unit)})`);
    checks.push(ratio >= o.peer.need);
  } else refs.push(`${o.peer.label}: ${why(m, o.peer.id)}`);
  if (o.ceiling) {
    if (ceiling) {
      const f = x.value / ceiling.value;
      refs.push(`${(f * 100).toFixed(0)}% of ${o.ceiling.label} (${fmt(ceiling.value, ceiling.unit)})`);
      checks.push(f >= o.ceiling.need);
    } else refs.push(`${o.ceiling.label}: ${why(m, o.ceiling.id)}`);
  }
  const p99 = ms(x.details, "p99");
  if (o.p99Below !== undefined && p99 !== undefined) checks.push(p99 < o.p99Below);
  const complete = peer && (!o.ceiling || ceiling);
  return { ...base, value: x.value, reference: refs.join("; "), ratio, met: complete ? checks.every(Boolean) : null, note: describe(x) };
}

/** A latency/time figure with an absolute bound (lower is better). */
function bound(m: M, o: { id: string; name: string; below: number; unit: string; target: string; vs?: { id: string; label: string } }): Row {
  const x = get(m, o.id);
  const base = { id: o.id, kind: "ours" as const, name: x?.label ?? o.name, unit: x?.unit ?? o.unit, target: o.target };
  if (!x) return unavailableRow(base, why(m, o.id));
  const ref = o.vs ? get(m, o.vs.id) : undefined;
  const ratio = ref ? ref.value / x.value : null;
  return {
    ...base,
    value: x.value,
    reference: ref ? `${ratio!.toFixed(2)}× faster than ${o.vs!.label} (${fmt(ref.value, ref.unit)})` : o.vs ? `${o.vs.label}: ${why(m, o.vs.id)}` : "absolute bound",
    ratio,
    met: x.value < o.below,
    note: describe(x),
  };
}

const RAW = { id: "ceiling.sign.raw", label: "raw token sign rate" };

/**
 * A whole-fleet job timed in seconds, held to a rate: its items per second (details.rate)
 * against a same-run reference rate, met at half of it or better.
 */
function sweepAgainst(m: M, id: string, name: string, items: string, vs: { id: string; label: string }): Row {
  const x = get(m, id);
  const base = { id, kind: "ours" as const, name: x?.label ?? name, unit: x?.unit ?? "s", target: "" };
  if (!x) return unavailableRow(base, why(m, id));
  const rate = typeof x.details?.rate === "number" ? (x.details.rate as number) : undefined;
  const ref = get(m, vs.id);
  const ratio = ref && rate !== undefined ? rate / ref.value : null;
  return {
    ...base,
    value: x.value,
    reference:
      ref && rate !== undefined
        ? `${Math.round(rate).toLocaleString("en-US")} ${items}/s = ${(ratio! * 100).toFixed(0)}% of ${vs.label} (${fmt(ref.value, ref.unit)})`
        : `${vs.label}: ${why(m, vs.id)}`,
    ratio,
    met: ratio === null ? null : ratio >= 0.5,
    note: describe(x),
  };
}

export const FIGURES: Array<(m: M) => Row> = [
  // ceilings
  (m) => plain(m, "ceiling.sign.raw1", "ceiling", "token sign, P-256, raw C_Sign, 1 session", "6-12k/s per session"),
  (m) => plain(m, "ceiling.sign.rawN", "ceiling", "token sign, P-256, raw C_Sign, 4 sessions", undefined, { id: "ceiling.sign.raw1", label: "1 session" }),
  (m) => plain(m, "ceiling.sign.signer", "ceiling", "token sign, P-256, packages/hsm Token.signer", undefined, RAW),
  (m) => plain(m, "ceiling.http", "ceiling", "bare node:http, fixed OCSP response", "≈ 39k req/s"),
  (m) => plain(m, "ceiling.http.ocsp.post", "ceiling", "bare node:http, the responder's own response, POST, in turns with it", undefined),
  (m) => plain(m, "ceiling.http.ocsp.get", "ceiling", "bare node:http, the responder's own response, GET, in turns with it", undefined),
  // peers
  (m) => plain(m, "peer.cfssl.issue", "peer", "cfssl serve + PostgreSQL certdb, stored issuance", "≈ 880 certs/s", RAW),
  (m) => plain(m, "peer.cfssl.ocsp.post", "peer", "cfssl ocspserve, pre-signed, POST", "≈ 10.6k req/s", { id: "ceiling.http", label: "bare node:http" }),
  (m) => plain(m, "peer.cfssl.ocsp.get", "peer", "cfssl ocspserve, pre-signed, GET", undefined, { id: "ceiling.http", label: "bare node:http" }),
  (m) => plain(m, "peer.openssl.ocsp", "peer", "openssl ocsp -index, live signing, POST", "≈ 3k req/s", { id: "ceiling.http", label: "bare node:http" }),
  (m) => plain(m, "peer.openssl.crl", "peer", "openssl ca -gencrl, 1M revoked", /1,000,000/.test(get(m, "peer.openssl.crl")?.label ?? "") ? "9.6 s, 606 MB RSS (1M)" : undefined),
  (m) => plain(m, "peer.pebble.orders", "peer", "pebble, ACME complete orders (http-01, 32 clients)", undefined),
  // ours
  (m) =>
    throughput(m, {
      id: "ours.issue.api",
      name: "stored issuance, HTTPS API (CSR → certificate in PostgreSQL)",
      peer: { id: "peer.cfssl.issue", label: "cfssl+PG", need: 2 },
      ceiling: { ...RAW, need: 0.3 },
      target: "≥ 2× cfssl+PG and ≥ 30% of raw sign rate",
    }),
  (m) =>
    throughput(m, {
      id: "ours.issue.api.workers",
      name: "stored issuance, HTTPS API, one worker per core",
      peer: { id: "peer.cfssl.issue", label: "cfssl+PG", need: 2 },
      ceiling: { ...RAW, need: 0.3 },
      target: "≥ 2× cfssl+PG and ≥ 30% of raw sign rate",
    }),
  (m) =>
    throughput(m, {
      id: "ours.issue.allinone",
      name: "stored issuance, all-in-one `npm start` on PostgreSQL",
      peer: { id: "peer.cfssl.issue", label: "cfssl+PG", need: 2 },
      target: "≥ 2× cfssl+PG (≥ 1× at the least)",
    }),
  (m) =>
    throughput(m, {
      id: "ours.issue.inproc",
      name: "stored issuance, in process (authority.issue)",
      peer: { id: "peer.cfssl.issue", label: "cfssl+PG", need: 2 },
      ceiling: { ...RAW, need: 0.3 },
      target: "(no HTTP) ≥ 2× cfssl+PG and ≥ 30% of raw sign rate",
    }),
  (m) =>
    throughput(m, {
      id: "ours.ocsp.post",
      name: "OCSP POST, pre-signed, 100k certificates",
      peer: { id: "peer.cfssl.ocsp.post", label: "cfssl ocspserve", need: 2 },
      ceiling: { id: "ceiling.http.ocsp.post", label: "bare node:http with the same bytes, in turns", need: 0.7 },
      p99Below: 5,
      target: "≥ 2× cfssl, ≥ 70% of node:http, p99 < 5 ms",
    }),
  (m) =>
    throughput(m, {
      id: "ours.ocsp.get",
      name: "OCSP GET, pre-signed, 100k certificates",
      peer: { id: "peer.cfssl.ocsp.get", fallback: "peer.cfssl.ocsp.post", label: "cfssl ocspserve GET", need: 2 },
      ceiling: { id: "ceiling.http.ocsp.get", label: "bare node:http with the same bytes, in turns", need: 0.7 },
      p99Below: 5,
      target: "≥ 2× cfssl, ≥ 70% of node:http, p99 < 5 ms",
    }),
  (m) => ({ ...plain(m, "ours.ocsp.presign", "ours", "OCSP pre-signing (OcspSigner)", undefined, { id: "ceiling.sign.raw", label: "raw sign rate" }), target: "— (each response is one signature)" }),
  (m) => bound(m, { id: "ours.ocsp.underload", name: "OCSP p99 while issuance runs flat out", below: 20, unit: "ms", target: "p99 < 20 ms" }),
  (m) => {
    const row = bound(m, {
      id: "ours.crl.full",
      name: "full CRL, 1M revoked, PostgreSQL → signed DER",
      below: Infinity,
      unit: "s",
      target: "≥ 2× faster than openssl, RSS ≤ 256 MB",
      vs: { id: "peer.openssl.crl", label: "openssl ca -gencrl" },
    });
    const x = get(m, "ours.crl.full");
    const rss = ms(x?.details, "rssMB");
    if (row.value !== null) row.met = row.ratio !== null && rss !== undefined ? row.ratio >= 2 && rss <= 256 : null;
    return row;
  },
  (m) =>
    throughput(m, {
      id: "ours.acme.orders",
      name: "ACME complete orders (newOrder → http-01 → finalize → download), 32 clients",
      peer: { id: "peer.pebble.orders", label: "pebble", need: 1 },
      target: "≥ pebble, storing everything and signing on the token",
    }),
  (m) => bound(m, { id: "ours.revoke.ocsp", name: "revocation visible in OCSP, p99", below: 1000, unit: "ms", target: "p99 < 1 s" }),
  (m) => bound(m, { id: "ours.revoke.delta", name: "revocation visible in the delta CRL, p99", below: 60_000, unit: "ms", target: "p99 < 60 s" }),
  (m) => bound(m, { id: "ours.inventory.expiring", name: "inventory: expiring in 7 days, 1M certificates, p95", below: 50, unit: "ms", target: "p95 < 50 ms" }),
  (m) => bound(m, { id: "ours.inventory.search", name: "inventory: text search, 1M certificates, p95", below: 50, unit: "ms", target: "p95 < 50 ms" }),
  (m) => ({
    ...sweepAgainst(m, "ours.fleet.ocsp", "Time to pre-sign OCSP for 1M certificates (OcspSigner sweep)", "responses", { id: "ours.fleet.sign.raw", label: "the raw token sign rate" }),
    target: "≥ 50% of the raw token sign rate (each response is one signature)",
  }),
  (m) => ({
    ...sweepAgainst(m, "ours.fleet.reissue", "Time to re-issue 100k certificates after an intermediate revocation", "re-issues", {
      id: "ours.fleet.issue",
      label: "in-process issuance (32 in flight)",
    }),
    target: "≥ 50% of the in-process issuance rate",
  }),
  (m) => bound(m, { id: "ours.coldstart", name: "cold start of the all-in-one server, 1M certificates", below: 3, unit: "s", target: "< 3 s to ready" }),
  (m) => bound(m, { id: "ours.firststart", name: "first start on an empty data dir (tokens, keys, embedded database)", below: 5, unit: "s", target: "< 5 s to ready" }),
  // footprint: idle RSS of whole process trees (bench/groups/footprint.ts)
  (m) => {
    const row = bound(m, { id: "ours.footprint.embedded", name: "`npm start` idle RSS, embedded database, whole process tree", below: Infinity, unit: "MB", target: "≤ 200 MB" });
    if (row.value !== null) row.met = row.value <= 200;
    return row;
  },
  (m) => footprint(m, "ours.footprint.allinone.pg", "all-in-one idle RSS on PostgreSQL, one API worker per core, whole tree"),
  (m) => footprint(m, "ours.footprint.role.api", "apps/api idle RSS on PostgreSQL (primary + workers), as in docker-compose"),
  (m) => footprint(m, "ours.footprint.role.ocsp", "apps/ocsp-responder idle RSS on PostgreSQL, as in docker-compose"),
  (m) => footprint(m, "ours.footprint.role.crl", "apps/crl-publisher idle RSS on PostgreSQL, as in docker-compose"),
  (m) => footprint(m, "ours.footprint.role.scheduler", "apps/scheduler idle RSS on PostgreSQL, as in docker-compose"),
];

/** An idle footprint measured for the record: no target, compared with the embedded `npm start`. */
function footprint(m: M, id: string, name: string): Row {
  return { ...plain(m, id, "ours", name, undefined, { id: "ours.footprint.embedded", label: "npm start, embedded" }), target: "— (measured)" };
}

export function rows(results: Result[]): Row[] {
  const m: M = new Map(results.map((r) => [r.id, r]));
  // "the raw token sign rate": the better of one synchronous session and four async ones
  const raws = ["ceiling.sign.raw1", "ceiling.sign.rawN"].map((id) => get(m, id)).filter((x): x is Measurement => !!x);
  if (raws.length) {
    const best = raws.reduce((a, b) => (a.value >= b.value ? a : b));
    m.set("ceiling.sign.raw", { ...best, id: "ceiling.sign.raw" });
  }
  return FIGURES.map((f) => f(m));
}

export function formatValue(row: Row): string {
  if (row.value === null) return "not available";
  return fmt(row.value, row.unit);
}
