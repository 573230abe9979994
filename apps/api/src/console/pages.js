// Overview, certificates, one certificate, audit log.
import { ApiError, get, itemsOf, post, query } from "./api.js";
import {
  append,
  badge,
  button,
  clear,
  copyButton,
  dateTime,
  download,
  duration,
  facts,
  filterForm,
  h,
  isoUtc,
  labelled,
  link,
  message,
  openDialog,
  pemToDer,
  relative,
  shortId,
  table,
  timeEl,
  urlCheckbox,
  utcField,
} from "./dom.js";

export const STATUSES = ["valid", "revoked", "expired", "pending", "failed"];
export const PROFILES = ["mtls", "server", "client"];
const REASONS = ["unspecified", "keyCompromise", "affiliationChanged", "superseded", "cessationOfOperation", "privilegeWithdrawn"];
const REFRESH_MS = 15_000;

export const certLink = (/** @type {string} */ serial, /** @type {unknown} */ text = serial) => link(`#/certificate/${encodeURIComponent(serial)}`, text, { class: "mono" });
export const issuerLink = (/** @type {string} */ id, /** @type {unknown} */ text = id) => link(`#/issuers?focus=${encodeURIComponent(id)}`, text, { class: "mono" });
/** A serial in a table: shortened on one line, linked to its page, with a copy button. */
const serialCell = (/** @type {string} */ serial) => shortId(serial, `#/certificate/${encodeURIComponent(serial)}`, "serial");

/**
 * "not available" for a route this CA does not have yet (404), else rethrows.
 * @param {Error} error
 * @param {string} what
 */
export function notAvailable(error, what) {
  // The API's catch-all 404 says "no such resource"; any other 404 names what was not found.
  if (error instanceof ApiError && error.status === 404 && /^no such resource/.test(error.message)) return message(`${what}: not available on this CA (the API has no such route).`, "warning");
  if (error instanceof ApiError && error.status === 401) throw error;
  return message(`${what}: ${error.message}`);
}

/** @typedef {{ refresh?: () => Promise<void> }} RefreshHandle */

/**
 * A page section that loads through `load(target)`, with an auto-refresh toggle kept in
 * the URL (?refresh=1). Returns the cleanup that stops the timer. `handle.refresh` is set
 * to the reload, for actions that change what the section shows.
 * @param {HTMLElement} container
 * @param {import("./app.js").Route} route
 * @param {import("./app.js").PageContext} ctx
 * @param {(target: HTMLElement) => Promise<void>} load
 * @param {RefreshHandle} [handle]
 */
export function refreshing(container, route, ctx, load, handle = {}) {
  const on = route.params.get("refresh") === "1";
  const target = h("div", { "aria-live": "polite" });
  const updated = h("span", { class: "hint" });
  container.append(
    h(
      "div",
      { class: "toolbar" },
      urlCheckbox({
        id: "auto-refresh",
        label: "Auto refresh (every 15 s)",
        params: route.params,
        param: "refresh",
        onChange: (params) => ctx.navigate(route.page, params, { replace: true }),
      }),
      button("Refresh now", () => run()),
      updated,
    ),
    target,
  );
  let busy = false;
  const run = async () => {
    if (busy) return;
    busy = true;
    try {
      const fresh = h("div");
      await load(fresh);
      if (ctx.isCurrent()) target.replaceChildren(...fresh.childNodes);
      updated.textContent = `Updated ${isoUtc(new Date())}`;
    } catch (error) {
      if (ctx.isCurrent()) target.replaceChildren(notAvailable(error, "Loading"));
    } finally {
      busy = false;
    }
  };
  handle.refresh = run;
  const first = run();
  const timer = on ? setInterval(run, REFRESH_MS) : null;
  return first.then(() => () => timer && clearInterval(timer));
}

// ---------- overview

/**
 * The next 30 UTC days from `fromIso`, each with its count (the API may list only days that have some).
 * @param {string | undefined} fromIso
 * @param {{ day: string, count: number }[]} counted
 */
function everyDay(fromIso, counted) {
  const counts = new Map(counted.map((d) => [d.day, d.count]));
  const start = new Date(fromIso ?? Date.now());
  const days = [];
  for (let i = 0; i < 30; i++) {
    const day = new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), start.getUTCDate() + i)).toISOString().slice(0, 10);
    days.push({ day, count: counts.get(day) ?? 0 });
  }
  // Any listed day outside that window is still shown rather than silently dropped.
  for (const d of counted) if (!days.some((x) => x.day === d.day)) days.push(d);
  return days;
}

/**
 * The certificates list behind an expiry count: services' valid certificates expiring within `days` of `fromIso`.
 * @param {string | undefined} fromIso
 * @param {number} days
 */
function expiringWithin(fromIso, days) {
  const from = new Date(fromIso ?? Date.now());
  const until = new Date(from.getTime() + days * 86_400_000);
  return `#/certificates${query({ status: "valid", internal: "false", expiresBefore: isoUtc(until) })}`;
}

/**
 * @param {HTMLElement} container
 * @param {import("./app.js").Route} route
 * @param {import("./app.js").PageContext} ctx
 */
export async function overviewPage(container, route, ctx) {
  document.title = "Overview · PKI console";
  container.append(h("h1", {}, "Overview"));
  return refreshing(container, route, ctx, async (target) => {
    /** @type {import("./api-types.js").Overview} */
    const o = await get("/v1/overview");
    const counts = (/** @type {string} */ title, /** @type {Record<string, number> | undefined} */ c) =>
      h(
        "section",
        { class: "card" },
        h("h2", {}, title),
        h(
          "dl",
          { class: "counts" },
          STATUSES.map((s) =>
            h("div", { "data-state": s }, h("dt", {}, link(`#/certificates${query({ status: s, internal: title.startsWith("Services") ? "false" : "true" })}`, s)), h("dd", {}, String(c?.[s] ?? 0))),
          ),
        ),
      );
    const e = o.expiring ?? {};
    const days = everyDay(o.generatedAt, o.expiryByDay ?? []);
    const max = Math.max(1, ...days.map((d) => d.count));
    const failed = o.autoRenew?.failedRenewals ?? [];
    append(target, [
      h("p", { class: "hint" }, `As of ${dateTime(o.generatedAt)}`),
      h("div", { class: "grid" }, counts("Services' certificates", o.services), counts("Internal (the CA's own)", o.internal)),
      h(
        "section",
        { class: "card" },
        h("h2", {}, "Expiring (services, valid)"),
        h(
          "dl",
          { class: "counts", id: "expiring" },
          /** @type {[string, number | undefined, number][]} */ ([
            ["next 24 h", e.next24h, 1],
            ["next 7 days", e.next7d, 7],
            ["next 30 days", e.next30d, 30],
          ]).map(([t, n, days]) => h("div", {}, h("dt", {}, link(expiringWithin(o.generatedAt, days), t)), h("dd", {}, String(n ?? 0)))),
        ),
        h("h3", { id: "timeline-title" }, "Expiries per day, next 30 days"),
        h(
          "ol",
          { class: "bars", id: "timeline", "aria-labelledby": "timeline-title" },
          days.map((d) => {
            const bar = h("span", { class: "bar" });
            // CSSOM, not a style attribute: the CSP forbids inline styles.
            bar.style.height = `${Math.round((d.count / max) * 100)}%`;
            return h(
              "li",
              { "data-count": String(d.count), "data-day": d.day, title: `${d.day}: ${d.count}` },
              h("span", { class: "bar-count" }, String(d.count)),
              h("span", { class: "bar-track" }, bar),
              h("span", { class: "bar-day" }, d.day.slice(5)),
            );
          }),
        ),
      ),
      h(
        "section",
        { class: "card" },
        h("h2", {}, "Auto-renewal"),
        h("p", {}, `${o.autoRenew?.enabled ?? 0} certificates are renewed automatically by the scheduler.`),
        table(
          "Failed renewals (latest 20)",
          ["When", "Certificate", "Subject", "Reason"],
          failed.map((f) => [timeEl(f.at), serialCell(f.serial), f.subject, f.reason]),
          "No failed renewals.",
        ),
      ),
    ]);
  });
}

// ---------- certificates

const FILTERS = ["q", "serial", "status", "issuerId", "profile", "provisioner", "expiresAfter", "expiresBefore", "internal", "order", "limit"];

/**
 * A labelled <select> of [value, text] options, `value` chosen.
 * @param {string} name
 * @param {string[][]} options
 * @param {string | null | undefined} value
 * @param {string} label
 */
function select(name, options, value, label) {
  return labelled(
    label,
    h(
      "select",
      { name },
      options.map(([v, t]) => h("option", { value: v, selected: v === (value ?? "") }, t)),
    ),
  );
}

/**
 * @param {HTMLElement} container
 * @param {import("./app.js").Route} route
 * @param {import("./app.js").PageContext} ctx
 */
export async function certificatesPage(container, route, ctx) {
  document.title = "Certificates · PKI console";
  const p = route.params;
  const [issuers, provisioners, overview] = await Promise.all([get("/v1/issuers").catch(() => []), get("/v1/provisioners").catch(() => []), get("/v1/overview").catch(() => null)]);
  const form = filterForm({
    keys: FILTERS,
    times: { expiresAfter: { label: "Expires after" }, expiresBefore: { label: "Expires before", endOfDay: true } },
    submit: "Search",
    clearHref: "#/certificates",
    onSearch: (next) => ctx.navigate("certificates", next),
    fields: [
      labelled(
        "Search",
        h("input", { type: "search", name: "q", value: p.get("q") ?? "", minlength: "3", maxlength: "253" }),
        "subject or SAN text, or the start of a serial (any case, colons allowed); 3+ characters",
      ),
      select("status", [["", "any"], ...STATUSES.map((s) => [s, s])], p.get("status"), "Status"),
      select("issuerId", [["", "any"], ...itemsOf(issuers).map((/** @type {import("./api-types.js").Issuer} */ i) => [i.id, `${i.subject} (${i.id})`])], p.get("issuerId"), "Issuer"),
      select("profile", [["", "any"], ...PROFILES.map((s) => [s, s])], p.get("profile"), "Profile"),
      select("provisioner", [["", "any"], ...itemsOf(provisioners).map((/** @type {import("./api-types.js").Provisioner} */ x) => [x.name, x.name])], p.get("provisioner"), "Provisioner"),
      utcField("Expires after", "expiresAfter", p.get("expiresAfter")),
      utcField("Expires before", "expiresBefore", p.get("expiresBefore")),
      select(
        "internal",
        [
          ["", "services and internal"],
          ["false", "services only"],
          ["true", "internal only"],
        ],
        p.get("internal"),
        "Kind",
      ),
      select(
        "order",
        [
          ["", "expiry, soonest first"],
          ["desc", "expiry, latest first"],
        ],
        p.get("order") === "asc" ? "" : p.get("order"),
        "Sort",
      ),
      select(
        "limit",
        [
          ["", "25"],
          ["50", "50"],
          ["100", "100"],
        ],
        p.get("limit"),
        "Per page",
      ),
    ],
  });
  container.append(h("h1", {}, "Certificates"), issueForm(ctx), form);

  const results = h("section", { "aria-label": "Results", id: "results" });
  container.append(results);
  const bySerial = await serialMatches(p);
  if (bySerial) results.append(bySerial);
  const { list, cursors } = await keysetPage(p, FILTERS, "25", "/v1/certificates", results, "Search");
  if (!list) return;
  const issuerName = new Map(itemsOf(issuers).map((/** @type {import("./api-types.js").Issuer} */ i) => [i.id, i.subject]));
  /** @type {import("./api-types.js").CertificateSummary[]} */
  const items = list.items ?? [];
  const pageNo = cursors.length + 1;
  results.append(
    h("p", { class: "count", id: "result-count" }, `Page ${pageNo}: ${items.length} certificate${items.length === 1 ? "" : "s"}${list.nextCursor ? " (more on the next page)" : ""}.`),
    table(
      "Certificates matching the filters",
      ["Serial", "Subject", "SANs", "Status", "Expires", "Issuer", "Profile", "Provisioner"],
      items.map((c) => [
        serialCell(c.serial),
        c.subject,
        sanList(c.sans, 3),
        [badge(c.status), c.internal ? h("span", { class: "tag" }, "internal") : null],
        [timeEl(c.notAfter), h("br"), h("span", { class: "hint" }, relative(c.notAfter))],
        [
          shortId(c.issuerId, `#/issuers?focus=${encodeURIComponent(c.issuerId)}`, "issuer ID"),
          h("br"),
          h("span", { class: "hint one-line", title: issuerName.get(c.issuerId) ?? "" }, issuerName.get(c.issuerId) ?? ""),
        ],
        c.profile,
        c.provisioner ?? c.provisionerId ?? "—",
      ]),
      "No certificate matches.",
    ),
    pager(route, ctx, cursors, list.nextCursor),
  );
  if (overview) {
    const line = (/** @type {Record<string, number> | undefined} */ c) => STATUSES.map((st) => `${c?.[st] ?? 0} ${st}`).join(", ");
    results.append(h("p", { class: "hint", id: "inventory-counts" }, `In the inventory: services ${line(overview.services)}; internal ${line(overview.internal)}.`));
  }
}

/** Hex digits, optionally as colon-separated bytes: what the start of a serial looks like. */
const SERIAL_LIKE = /^(?:[0-9a-f]{2}:)*[0-9a-f]{1,2}:?$|^[0-9a-f]+$/i;

/**
 * A search term that could be the start of a serial is also looked up as one (a separate
 * table above the text matches, since "cafe" may be a name as well as a serial). The API
 * normalises case and colons.
 * @param {URLSearchParams} p the page's query
 */
async function serialMatches(p) {
  const term = (p.get("q") ?? "").trim();
  if (!term || !SERIAL_LIKE.test(term) || p.getAll("c").length) return null;
  let list;
  try {
    list = await get(`/v1/certificates${query({ serial: term, limit: "10" })}`);
  } catch (error) {
    return notAvailable(error, "Serial search");
  }
  const items = list.items ?? [];
  return h(
    "section",
    { id: "serial-matches", "aria-label": "Serials starting with the search term" },
    table(
      `Serials starting with ${term}${list.nextCursor ? " (the first 10)" : ""}`,
      ["Serial", "Subject", "Status", "Expires"],
      items.map((/** @type {import("./api-types.js").CertificateSummary} */ c) => [serialCell(c.serial), c.subject, badge(c.status), timeEl(c.notAfter)]),
      `No serial starts with ${term}.`,
    ),
  );
}

/**
 * `pki issue` in the browser: the operator signs a service's CSR (PEM) under a profile, as
 * the admin token may, through the same issuance cycle as every other certificate.
 * @param {import("./app.js").PageContext} ctx
 */
function issueForm(ctx) {
  const status = h("div");
  const form = h(
    "form",
    {
      id: "issue-form",
      onsubmit: async (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        const data = new FormData(form);
        /** @type {import("./api-types.js").IssueBody} */
        const body = { csr: String(data.get("csr") ?? "").trim(), profile: String(data.get("profile") ?? "mtls") };
        const ttl = String(data.get("ttlSeconds") ?? "").trim();
        if (ttl) body.ttlSeconds = Number(ttl);
        if (data.get("autoRenew")) body.autoRenew = true;
        clear(status);
        try {
          const issued = await post("/v1/certificates", body);
          ctx.navigate(`certificate/${encodeURIComponent(issued.serial)}`);
        } catch (error) {
          status.append(message(`Not issued: ${error.message}`));
        }
      },
    },
    labelled("CSR (PEM)", h("textarea", { name: "csr", rows: "6", required: true, spellcheck: "false", class: "mono" }), "-----BEGIN CERTIFICATE REQUEST----- …, as openssl req writes it"),
    select(
      "profile",
      PROFILES.map((s) => [s, s]),
      "mtls",
      "Profile",
    ),
    labelled("Lifetime (seconds)", h("input", { type: "number", name: "ttlSeconds", min: "60", placeholder: "the CA's default" })),
    labelled("Renew automatically", h("input", { type: "checkbox", name: "autoRenew", value: "1" })),
    status,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Issue")),
  );
  return h("details", { class: "card", id: "issue" }, h("summary", {}, "Issue a certificate from a CSR"), form);
}

/**
 * One keyset page of `path`, from the filters in the URL and its stack of cursors (`c`, one
 * per page turned): `list` is undefined when the API could not answer (said in `results`).
 * @param {URLSearchParams} p the page's query
 * @param {string[]} filters the query's keys the API takes
 * @param {string} defaultLimit
 * @param {string} path
 * @param {HTMLElement} results
 * @param {string} what names the list in a "not available"
 * @returns {Promise<{ list: any, cursors: string[] }>}
 */
async function keysetPage(p, filters, defaultLimit, path, results, what) {
  const cursors = p.getAll("c");
  /** @type {Record<string, string | null | undefined>} */
  const params = {};
  for (const key of filters) if (p.get(key)) params[key] = p.get(key);
  params.limit = params.limit ?? defaultLimit;
  if (cursors.length) params.cursor = cursors.at(-1);
  try {
    return { list: await get(`${path}${query(params)}`), cursors };
  } catch (error) {
    results.append(notAvailable(error, what));
    return { list: undefined, cursors };
  }
}

/** @param {string[]} [sans] @param {number} [max] how many to list before "+N more" */
function sanList(sans = [], max = Infinity) {
  const shown = sans.slice(0, max);
  return h(
    "ul",
    { class: "sans" },
    shown.map((s) => h("li", {}, s)),
    sans.length > max ? h("li", { class: "hint" }, `+${sans.length - max} more`) : null,
  );
}

/**
 * Previous / Next over keyset cursors; the stack of cursors is in the URL (?c=…&c=…).
 * @param {import("./app.js").Route} route
 * @param {import("./app.js").PageContext} ctx
 * @param {string[]} cursors
 * @param {string | null | undefined} nextCursor
 */
export function pager(route, ctx, cursors, nextCursor) {
  const to = (/** @type {string[]} */ stack) => {
    const params = new URLSearchParams(route.params);
    params.delete("c");
    for (const c of stack) params.append("c", c);
    ctx.navigate(route.page, params);
  };
  return h(
    "nav",
    { class: "pager", "aria-label": "Pages" },
    button("Previous", () => to(cursors.slice(0, -1)), { disabled: cursors.length === 0 }),
    h("span", {}, `Page ${cursors.length + 1}`),
    // (disabled without a next cursor)
    button("Next", () => to([...cursors, /** @type {string} */ (nextCursor)]), { disabled: !nextCursor }),
  );
}

// ---------- one certificate

/**
 * @param {HTMLElement} container
 * @param {import("./app.js").Route} route
 * @param {import("./app.js").PageContext} ctx
 */
export async function certificatePage(container, route, ctx) {
  const serial = route.rest[0] ?? "";
  document.title = `Certificate ${serial} · PKI console`;
  let c;
  try {
    c = await get(`/v1/certificates/${encodeURIComponent(serial)}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) throw error;
    container.append(h("h1", {}, "Certificate"), message(`Certificate ${serial}: ${error.message}`));
    return;
  }
  // A serial typed or pasted in another form (upper case, colons) is shown under its own.
  if (c.serial !== serial) history.replaceState(null, "", `#/certificate/${encodeURIComponent(c.serial)}`);
  const pem = c.pem ?? c.certificate ?? null;
  const countdown = h("span", { id: "countdown", class: "countdown" });
  const tick = () => {
    const left = (new Date(c.notAfter).getTime() - Date.now()) / 1000;
    countdown.textContent = left > 0 ? `expires in ${duration(left)}` : `expired ${duration(-left)} ago`;
  };
  tick();
  const timer = setInterval(tick, 1000);

  const rp = h("div", { id: "relying-party" });
  const actions = h("div", { class: "actions" });
  if (pem) {
    actions.append(
      button("Download PEM", () => download(`${c.serial}.pem`, pem, "application/x-pem-file")),
      button("Download DER", () => download(`${c.serial}.der`, pemToDer(pem), "application/pkix-cert")),
      button("Download chain", () => download(`${c.serial}-chain.pem`, [pem, ...(c.chain ?? [])].join(""), "application/x-pem-file"), {
        disabled: !c.chain,
        title: c.chain ? undefined : "the API did not send the chain",
      }),
    );
  }
  if (c.status === "valid") actions.append(button("Revoke…", () => revoke(c, ctx), { class: "danger", id: "revoke" }));

  container.append(
    h("p", { class: "crumbs" }, link("#/certificates", "Certificates"), " / ", h("span", { class: "mono" }, c.serial)),
    h("h1", {}, c.subject || c.serial),
    h(
      "section",
      { class: "card" },
      facts([
        ["Serial", [h("span", { class: "mono", id: "serial" }, c.serial), " ", copyButton(c.serial, "Copy", { class: "copy", "aria-label": "Copy the serial" })]],
        ["Status", [badge(c.status), c.internal ? h("span", { class: "tag" }, "internal") : null]],
        ["Subject", c.subject],
        ["SANs", sanList(c.sans)],
        ["Issuer", [issuerLink(c.issuerId), c.issuerSubject ? ` ${c.issuerSubject}` : ""]],
        ["Valid from", timeEl(c.notBefore)],
        ["Valid until", [timeEl(c.notAfter), " (", countdown, ")"]],
        ["Profile", c.profile],
        ["Key algorithm", c.keyAlgorithm ?? "—"],
        ["Key usage", h("span", { id: "key-usage" }, c.keyUsage?.length ? c.keyUsage.join(", ") : "—")],
        ["Extended key usage", h("span", { id: "extended-key-usage" }, c.extendedKeyUsage?.length ? c.extendedKeyUsage.join(", ") : "—")],
        ["SHA-256 fingerprint", c.fingerprints ? fingerprint(c.fingerprints.sha256, "fingerprint-sha256", "SHA-256") : "—"],
        ["SHA-1 fingerprint", c.fingerprints ? fingerprint(c.fingerprints.sha1, "fingerprint-sha1", "SHA-1") : "—"],
        ["Requester", c.requester ?? "—"],
        ["Provisioner", c.provisioner ?? c.provisionerId ?? "—"],
        ["Auto-renew", c.autoRenew ? "yes" : "no"],
        ["Renewal of", c.predecessorSerial ? certLink(c.predecessorSerial) : "—"],
        ["Renewed by", c.successorSerial ? certLink(c.successorSerial) : "—"],
        ...(c.revokedAt ? [["Revoked", [timeEl(c.revokedAt), ` (${c.revocationReason ?? "unspecified"})`]]] : []),
      ]),
      actions,
    ),
    extensionsCard(c.extensions ?? []),
    h("section", { class: "card" }, h("h2", {}, "What relying parties see now"), rp),
  );
  await loadRelyingParty(c.serial, rp, ctx);
  return () => clearInterval(timer);
}

/** @param {string} value @param {string} id @param {string} what which fingerprint (SHA-256, SHA-1) */
function fingerprint(value, id, what) {
  return [h("span", { class: "mono fingerprint", id }, value), " ", copyButton(value, "Copy", { class: "copy", "aria-label": `Copy the ${what} fingerprint` })];
}

/**
 * Every extension of the certificate, as the CA decoded it (hex for the ones it does not know).
 * @param {import("./api-types.js").CertificateExtension[]} extensions
 */
function extensionsCard(extensions) {
  return h(
    "section",
    { class: "card", id: "extensions" },
    h("h2", {}, "Extensions"),
    table(
      "Extensions in the certificate",
      ["Extension", "Critical", "Value"],
      extensions.map((e) => [
        [h("span", {}, e.name), e.name === e.oid ? null : [h("br"), h("span", { class: "hint mono" }, e.oid)]],
        e.critical ? "critical" : "no",
        h(
          "ul",
          { class: "sans mono" },
          e.values.map((v) => h("li", {}, v)),
        ),
      ]),
      "No extensions (the certificate is not signed yet).",
    ),
  );
}

/**
 * @param {string} serial
 * @param {HTMLElement} target
 * @param {{ isCurrent: () => boolean }} ctx
 */
async function loadRelyingParty(serial, target, ctx) {
  /** @type {import("./api-types.js").RelyingPartyView} */
  let r;
  try {
    r = await get(`/v1/certificates/${encodeURIComponent(serial)}/relying-party`);
  } catch (error) {
    if (ctx.isCurrent()) target.replaceChildren(notAvailable(error, "Relying-party check"));
    return null;
  }
  if (!ctx.isCurrent()) return r;
  const o = r.ocsp ?? {};
  const crl = r.crl ?? {};
  target.replaceChildren(
    h(
      "div",
      { class: "grid" },
      h(
        "div",
        {},
        h("h3", {}, "OCSP"),
        facts([
          ["Status", h("span", { id: "ocsp-status" }, badge(o.status ?? "unknown"))],
          ["Responder", o.url ?? "—"],
          ["This update", timeEl(o.thisUpdate)],
          ["Next update", timeEl(o.nextUpdate)],
          ...(o.revokedAt ? [["Revoked", [timeEl(o.revokedAt), ` (${o.reason ?? "unspecified"})`]]] : []),
          ...(o.error ? [["Error", o.error]] : []),
        ]),
      ),
      h(
        "div",
        {},
        h("h3", {}, "CRL"),
        facts([
          ["Listed", h("span", { id: "crl-listed" }, crl.error ? "—" : crl.listed ? "yes (revoked)" : "no")],
          ["URL", crl.url ?? "—"],
          ["CRL number", crl.number === undefined || crl.number === null ? "—" : String(crl.number)],
          ["This update", timeEl(crl.thisUpdate)],
          ["Next update", timeEl(crl.nextUpdate)],
          ...(crl.error ? [["Error", crl.error]] : []),
        ]),
      ),
    ),
    button("Ask again", () => loadRelyingParty(serial, target, ctx)),
  );
  return r;
}

/** @param {import("./api-types.js").CertificateDetails} c @param {import("./app.js").PageContext} ctx */
async function revoke(c, ctx) {
  const done = await openDialog(`Revoke ${c.serial}?`, (close) => {
    const reason = h(
      "select",
      { name: "reason" },
      REASONS.map((r) => h("option", { value: r }, r)),
    );
    const typed = h("input", { type: "text", name: "confirm-serial", autocomplete: "off", spellcheck: "false" });
    const status = h("div");
    const go = h("button", { type: "submit", class: "danger", disabled: true }, "Revoke");
    typed.addEventListener("input", () => {
      go.disabled = typed.value.trim().toLowerCase() !== c.serial;
    });
    return h(
      "form",
      {
        onsubmit: async (/** @type {SubmitEvent} */ event) => {
          event.preventDefault();
          if (typed.value.trim().toLowerCase() !== c.serial) return;
          go.disabled = true;
          clear(status).append(message("Revoking…", "status"));
          try {
            await post(`/v1/certificates/${encodeURIComponent(c.serial)}/revoke`, { reason: reason.value });
            close(true);
          } catch (error) {
            clear(status).append(message(`Not revoked: ${error.message}`));
            go.disabled = false;
          }
        },
      },
      h("p", {}, "Relying parties will refuse this certificate from now on (OCSP at once, CRLs at their next publication). This cannot be undone."),
      h("p", {}, "Subject: ", h("strong", {}, c.subject)),
      labelled("Reason", reason),
      labelled("Type the serial to confirm", typed, c.serial),
      status,
      h(
        "div",
        { class: "actions" },
        button("Cancel", () => close(false)),
        go,
      ),
    );
  });
  if (!done) return;
  // The page again with the new status, then OCSP asked until it says revoked (the
  // responder is told at once; a few tries cover the pre-signer's hand-off).
  await ctx.rerender();
  for (let i = 0; i < 10; i++) {
    const target = document.getElementById("relying-party");
    if (!target || document.getElementById("ocsp-status")?.textContent === "revoked") return;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const r = await loadRelyingParty(c.serial, target, { isCurrent: () => target.isConnected });
    if (r?.ocsp?.status === "revoked") return;
  }
}

// ---------- audit

const AUDIT_FILTERS = ["actor", "action", "target", "outcome", "since", "until", "limit"];

/**
 * @param {HTMLElement} container
 * @param {import("./app.js").Route} route
 * @param {import("./app.js").PageContext} ctx
 */
export async function auditPage(container, route, ctx) {
  document.title = "Audit log · PKI console";
  const p = route.params;
  const form = filterForm({
    keys: AUDIT_FILTERS,
    times: { since: { label: "From" }, until: { label: "To" } },
    submit: "Filter",
    clearHref: "#/audit",
    onSearch: (next) => ctx.navigate("audit", next),
    fields: [
      labelled("Actor", h("input", { type: "text", name: "actor", value: p.get("actor") ?? "" }), "starts with, e.g. admin:"),
      labelled("Action", h("input", { type: "text", name: "action", value: p.get("action") ?? "" }), "starts with, e.g. certificate."),
      labelled("Target", h("input", { type: "text", name: "target", value: p.get("target") ?? "" }), "exactly: a serial, issuer ID or name"),
      select(
        "outcome",
        [
          ["", "any"],
          ["ok", "ok"],
          ["denied", "denied"],
          ["error", "error"],
        ],
        p.get("outcome"),
        "Outcome",
      ),
      utcField("From", "since", p.get("since")),
      utcField("To", "until", p.get("until")),
      select(
        "limit",
        [
          ["", "50"],
          ["100", "100"],
          ["200", "200"],
        ],
        p.get("limit"),
        "Per page",
      ),
    ],
  });
  container.append(h("h1", {}, "Audit log"), form);
  const results = h("section", { "aria-label": "Audit events", id: "audit" });
  container.append(results);
  const { list, cursors } = await keysetPage(p, AUDIT_FILTERS, "50", "/v1/audit", results, "Audit log");
  if (!list) return;
  const items = list.items ?? [];
  results.append(
    h("p", { class: "count" }, `Page ${cursors.length + 1}: ${items.length} event${items.length === 1 ? "" : "s"}.`),
    table(
      "Audit events, newest first",
      ["When", "Actor", "Action", "Target", "Outcome", "Source", "Details"],
      items.map((/** @type {import("./api-types.js").AuditEvent} */ a) => [
        timeEl(a.at),
        a.actor,
        a.action,
        a.target ? (/^[0-9a-f]{2,40}$/.test(a.target) ? certLink(a.target) : a.target) : "—",
        badge(a.outcome ?? "—"),
        a.sourceIp ?? "—",
        auditDetails(a.details),
      ]),
      "No audit event matches.",
    ),
    pager(route, ctx, cursors, list.nextCursor),
  );
}

/**
 * An event's details on one line, cut with an ellipsis where the column ends; opening it
 * shows every field in full.
 * @param {unknown} details
 */
function auditDetails(details) {
  if (!details || typeof details !== "object" || Object.keys(details).length === 0) return "—";
  const text = (/** @type {unknown} */ v) => (typeof v === "string" ? v : JSON.stringify(v));
  const entries = Object.entries(details);
  return h(
    "details",
    { class: "audit-details" },
    h("summary", { class: "mono" }, entries.map(([k, v]) => `${k}: ${text(v)}`).join("; ")),
    h(
      "dl",
      { class: "facts details" },
      entries.map(([k, v]) => [h("dt", {}, k), h("dd", { class: "mono" }, typeof v === "string" ? v : JSON.stringify(v, null, 2))]),
    ),
  );
}
