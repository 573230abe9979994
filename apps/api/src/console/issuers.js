// The issuer hierarchy (root → intermediates), their health, and the lifecycle actions:
// rotate, activate a staged intermediate, revoke with re-issue (dry run first); each
// action's outcome stays on the page, and the page follows a new intermediate until its
// first CRL and OCSP responder are there. CA certificates download as PEM or DER.
import { get, itemsOf, post } from "./api.js";
import { append, badge, button, clear, confirmDialog, dateTime, download, duration, facts, h, labelled, link, message, openDialog, pemToDer, timeEl, urlCheckbox } from "./dom.js";
import { notAvailable } from "./pages.js";

/** @typedef {import("./api-types.js").Issuer} Issuer */
/**
 * What the issuers page lends its dialogs.
 * @typedef {object} IssuerPage
 * @property {() => Promise<void>} reload
 * @property {() => boolean} shown whether the page is still the one on screen
 * @property {(text: string, kind?: "error" | "warning" | "status") => void} notify the outcome, above the tree
 * @property {() => void} follow reload until every live intermediate has its CRL and OCSP responder
 */

/**
 * @param {HTMLElement} container
 * @param {import("./app.js").Route} route
 * @param {import("./app.js").PageContext} ctx
 */
export async function issuersPage(container, route, ctx) {
  document.title = "Issuers · PKI console";
  container.append(
    h("h1", {}, "Issuers"),
    h(
      "p",
      { class: "hint", id: "ceremonies" },
      "Rotating and revoking an intermediate sign with the root key: they work here only when the API process has the root token’s PIN (PKI_ROOT_PIN, PKI_ROOT_PIN_FILE, or the quickstart’s .pki/pki-root.pin, which npm start reads); otherwise run ",
      h("code", {}, "pki issuers rotate"),
      " or ",
      h("code", {}, "pki issuers revoke"),
      " where the PIN is. The ceremonies stay on the command line by design: ",
      h("code", {}, "pki init"),
      " (a root, a new hierarchy) and ",
      h("code", {}, "pki crl sign-root"),
      ".",
    ),
  );
  const focus = route.params.get("focus");
  const on = route.params.get("refresh") === "1";
  const tree = h("div", { id: "issuer-tree", "aria-live": "polite" });
  // Outside the tree, so an action's outcome survives the reloads that follow it.
  const notice = h("div", { id: "issuer-notice" });
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
        onChange: (params) => ctx.navigate("issuers", params, { replace: true }),
      }),
      button("Refresh now", () => load()),
      updated,
    ),
    notice,
    tree,
  );
  /** @type {ReturnType<typeof setTimeout> | null} */
  let followTimer = null;
  let followUntil = 0;
  /** @type {IssuerPage} */
  const page = {
    reload: () => load(),
    shown: () => notice.isConnected,
    notify: (/** @type {string} */ text, /** @type {"error" | "warning" | "status"} */ kind = "status") => notice.replaceChildren(message(text, kind)),
    // After a rotation, activation or revocation: reload every 2 s (for at most 2 min) until
    // every live intermediate has its first CRL and OCSP responder, which the publisher
    // makes within seconds, so nobody has to press Refresh to see them.
    follow: () => {
      followUntil = Date.now() + 120_000;
      if (!followTimer) followTimer = setTimeout(followStep, 2000);
    },
  };
  const followStep = async () => {
    followTimer = null;
    const list = await load();
    if (!ctx.isCurrent() || !list) return;
    if (list.some(awaitingPublication) && Date.now() < followUntil) followTimer = setTimeout(followStep, 2000);
  };
  const load = async () => {
    let list;
    try {
      list = itemsOf(await get("/v1/issuers"));
    } catch (error) {
      tree.replaceChildren(notAvailable(error, "Issuers"));
      return undefined;
    }
    if (!ctx.isCurrent()) return undefined;
    tree.replaceChildren(renderTree(list, focus, page));
    updated.textContent = `Updated ${new Date().toISOString().slice(11, 19)} UTC`;
    return list;
  };
  const list = await load();
  if (list?.some(awaitingPublication)) page.follow();
  const focused = focus && document.getElementById(`issuer-${focus}`);
  if (focused) focused.scrollIntoView({ block: "center" });
  const timer = on ? setInterval(load, 15_000) : null;
  return () => {
    if (timer) clearInterval(timer);
    if (followTimer) clearTimeout(followTimer);
  };
}

/** The active intermediate before the publisher has made its first CRL or OCSP responder (a staged one gets them when it takes over). */
const awaitingPublication = (/** @type {Issuer} */ i) => i.role === "intermediate" && i.status === "active" && (!i.crl || !i.ocsp);

/** @param {Issuer[]} issuers @param {string | null} focus @param {IssuerPage} page */
function renderTree(issuers, focus, page) {
  const children = new Map();
  for (const i of issuers) {
    const key = i.parentId ?? "";
    if (!children.has(key)) children.set(key, []);
    children.get(key).push(i);
  }
  const ids = new Set(issuers.map((i) => i.id));
  // Roots, and any issuer whose parent is not in the list, start a tree.
  const tops = issuers.filter((i) => !i.parentId || !ids.has(i.parentId));
  const node = (/** @type {Issuer} */ i) => {
    const kids = children.get(i.id) ?? [];
    return h("li", {}, issuerCard(i, focus === i.id, page), kids.length ? h("ul", { class: "tree" }, kids.map(node)) : null);
  };
  const hierarchies = [...new Set(tops.map((i) => i.hierarchy))];
  return h(
    "div",
    {},
    hierarchies.map((hierarchy) =>
      h(
        "section",
        { class: "hierarchy", "aria-label": `Hierarchy ${hierarchy}` },
        h(
          "div",
          { class: "toolbar" },
          h("h2", {}, `Hierarchy “${hierarchy}”`),
          button("Rotate intermediate…", () => rotate(hierarchy, page), { class: "primary" }),
        ),
        h("ul", { class: "tree" }, tops.filter((i) => i.hierarchy === hierarchy).map(node)),
      ),
    ),
  );
}

/** @param {Issuer} i */
function ocspHealth(i) {
  const ocsp = i.ocsp;
  if (i.ocsp === undefined) return "not available";
  if (!ocsp) {
    if (i.role === "root") return "answered with the root’s own signature (pki crl sign-root)";
    if (i.status === "staged") return "none until it takes over";
    return awaitingPublication(i) ? "no responder certificate yet: the publisher makes one within seconds (this page updates by itself)" : "no responder certificate";
  }
  const left = (new Date(ocsp.responderNotAfter).getTime() - Date.now()) / 1000;
  const state = left <= 0 ? "expired" : left < 86400 ? "expires soon" : "ok";
  return [badge(state === "ok" ? "ok" : state === "expired" ? "expired" : "warning"), ` responder ${ocsp.responderSerial}, until ${dateTime(ocsp.responderNotAfter)}`];
}

/** @param {Issuer} i */
function crlHealth(i) {
  const crl = i.crl;
  if (crl) return `#${crl.number}, published ${duration(crl.ageSeconds ?? 0)} ago, next by ${dateTime(crl.nextUpdate)}`;
  if (crl === undefined) return "not available";
  if (i.status === "staged") return "none until it takes over";
  return awaitingPublication(i) ? "none yet: the publisher signs the first one within seconds (this page updates by itself)" : "none published";
}

/** @param {Issuer} i */
function blastRadius(i) {
  if (i.liveCertificates === undefined) return "not available";
  const n = i.liveCertificates;
  const text = `${n} live certificate${n === 1 ? "" : "s"}${i.role === "root" ? " under its intermediates" : ""}`;
  const counted = i.liveCertificatesCountedAt ? ` (counted ${dateTime(i.liveCertificatesCountedAt)})` : "";
  // The certificates list filters by issuer; a root's radius is its intermediates' certificates.
  const href = i.role === "root" ? "#/certificates?status=valid" : `#/certificates?issuerId=${encodeURIComponent(i.id)}&status=valid`;
  return [link(href, text), counted];
}

/** @param {Issuer} i @param {boolean} focused @param {IssuerPage} page */
function issuerCard(i, focused, page) {
  const actions = h("div", { class: "actions" });
  if (i.role === "intermediate" && i.status === "staged") actions.append(button("Activate…", () => activate(i, page)));
  if (i.role === "intermediate" && i.status !== "revoked" && i.status !== "expired") actions.append(button("Revoke and re-issue…", () => revokeIssuer(i, page), { class: "danger" }));
  const name = `${i.role}-${i.id}`;
  actions.append(
    button("Download PEM", () => download(`${name}.pem`, i.certificate, "application/x-pem-file"), { "aria-label": `Download PEM certificate of ${i.id}` }),
    button("Download DER", () => download(`${name}.crt`, pemToDer(i.certificate), "application/pkix-cert"), { "aria-label": `Download DER certificate of ${i.id}` }),
  );
  return h(
    "article",
    { class: `card issuer${focused ? " focused" : ""}`, id: `issuer-${i.id}`, "data-status": i.status, "data-role": i.role, "aria-label": `${i.subject} (${i.id})` },
    h("h3", {}, h("span", { class: "issuer-name" }, i.subject), " ", badge(i.status), " ", h("span", { class: "tag" }, i.role)),
    facts([
      ["ID", h("span", { class: "mono issuer-id" }, i.id)],
      ["Serial", h("span", { class: "mono" }, i.serial ?? "—")],
      ["Valid", [timeEl(i.notBefore), " – ", timeEl(i.notAfter)]],
      ["Key", i.keyAlgorithm ?? "—"],
      ["Blast radius", h("span", { class: "blast-radius" }, blastRadius(i))],
      ["CRL", h("span", { class: "crl-health" }, crlHealth(i))],
      ["OCSP", h("span", { class: "ocsp-health" }, ocspHealth(i))],
      ...(i.revokedAt ? [["Revoked", [timeEl(i.revokedAt), ` (${i.revocationReason ?? "unspecified"})`]]] : []),
    ]),
    actions,
  );
}

/**
 * "2026-12-09T14:00" (also with a space, seconds or a Z) read as UTC; undefined otherwise.
 * @param {unknown} value
 */
export function utcInputToIso(value) {
  const match = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2})?Z?$/.exec(String(value).trim());
  if (!match) return undefined;
  const d = new Date(`${match[1]}T${match[2]}${match[3] ?? ":00"}Z`);
  // Date rolls 2026-02-30 over to March: only a date that reads back the same is one.
  return Number.isNaN(d.getTime()) || d.toISOString().slice(0, 16) !== `${match[1]}T${match[2]}` ? undefined : d.toISOString();
}

/** @param {string} hierarchy @param {IssuerPage} page */
async function rotate(hierarchy, page) {
  await openDialog(`Rotate the intermediate of “${hierarchy}”`, (close) => {
    const inAnHour = new Date(Date.now() + 3_600_000).toISOString().slice(0, 16);
    const at = h("input", {
      type: "text",
      name: "activateAt",
      id: "rotate-at-time",
      value: inAnHour,
      placeholder: "YYYY-MM-DDTHH:MM",
      inputmode: "numeric",
      autocomplete: "off",
      spellcheck: "false",
      class: "mono",
      disabled: true,
    });
    // The time only matters for "at a date and time": with "Now" it is greyed out.
    const whenChanged = () => {
      at.disabled = !later.checked;
    };
    const now = h("input", { type: "radio", name: "when", value: "now", checked: true, id: "rotate-now", onchange: whenChanged });
    const later = h("input", { type: "radio", name: "when", value: "at", id: "rotate-at", onchange: whenChanged });
    const status = h("div");
    const go = h("button", { type: "submit", class: "primary" }, "Rotate");
    return h(
      "form",
      {
        onsubmit: async (/** @type {SubmitEvent} */ event) => {
          event.preventDefault();
          /** @type {{ hierarchy: string, activateAt?: string }} */
          const body = { hierarchy };
          if (later.checked) {
            const iso = utcInputToIso(at.value);
            if (!iso) {
              clear(status).append(message("Write the time the new intermediate takes over in UTC as YYYY-MM-DDTHH:MM (24-hour), e.g. 2026-12-09T14:00."));
              at.focus();
              return;
            }
            body.activateAt = iso;
          }
          go.disabled = true;
          clear(status).append(message("Rotating…", "status"));
          try {
            const r = await post("/v1/issuers/rotate", body);
            const retired = r.retired?.length ? `; retired ${r.retired.join(", ")}` : "";
            page.notify(
              r.issuer.status === "staged"
                ? `Rotated: new intermediate ${r.issuer.id} is staged and takes over at ${dateTime(r.activateAt)}.`
                : `Rotated: new intermediate ${r.issuer.id} is active and signs new certificates${retired}.`,
            );
            close(true);
            await page.reload();
            page.follow();
          } catch (error) {
            clear(status).append(message(`Not rotated: ${error.message}`));
            go.disabled = false;
          }
        },
      },
      h(
        "p",
        {},
        "A new intermediate key and certificate are made on the HSM. New certificates are signed by it once it is active; the current one is retired and keeps answering OCSP and CRLs for what it signed.",
      ),
      h(
        "fieldset",
        {},
        h("legend", {}, "When does it take over?"),
        h("div", { class: "check" }, now, h("label", { for: "rotate-now" }, "Now")),
        h("div", { class: "check" }, later, h("label", { for: "rotate-at" }, "At a date and time (staged until then)")),
        labelled("Take over at (UTC, YYYY-MM-DDTHH:MM, 24-hour)", at),
      ),
      status,
      h(
        "div",
        { class: "actions" },
        button("Cancel", () => close(false)),
        go,
      ),
    );
  });
}

/** @param {Issuer} i @param {IssuerPage} page */
async function activate(i, page) {
  const ok = await confirmDialog(
    `Activate ${i.id}?`,
    h("p", {}, "The staged intermediate ", h("strong", {}, i.subject), " becomes the one that signs new certificates; the active one is retired."),
    "Activate",
  );
  if (!ok) return;
  try {
    const r = await post(`/v1/issuers/${encodeURIComponent(i.id)}/activate`);
    page.notify(`Activated ${r.activated}; retired ${(r.retired ?? []).join(", ") || "none"}.`);
    await page.reload();
    page.follow();
  } catch (error) {
    page.notify(`Not activated: ${error.message}`, "error");
  }
}

/**
 * What the dry run's replacement means, in words: who signs new certificates and the re-issues afterwards.
 * @param {string | null | undefined} replacement
 */
function replacementPlan(replacement) {
  if (!replacement) return { line: "leave the hierarchy with no active intermediate: new certificates cannot be issued until one is rotated in", under: undefined };
  const [kind, id] = replacement.split(" ");
  if (kind === "staged") return { line: `activate the staged intermediate ${id}, which signs new certificates from then on`, under: `the staged intermediate ${id}` };
  if (kind === "active") return { line: `leave the active intermediate ${id} signing new certificates, as it does now`, under: `the active intermediate ${id}` };
  return { line: "make a new intermediate (signed by the root) and sign new certificates with it", under: "the new intermediate" };
}

/** @param {Issuer} i @param {IssuerPage} page */
async function revokeIssuer(i, page) {
  await openDialog(`Revoke intermediate ${i.id}?`, (close) => {
    const reason = h(
      "select",
      { name: "reason" },
      ["keyCompromise", "cACompromise", "affiliationChanged", "superseded", "cessationOfOperation", "unspecified"].map((r) => h("option", { value: r }, r)),
    );
    const body = h("div", {}, message("Asking what this would do (dry run)…", "status"));
    const footer = h(
      "div",
      { class: "actions" },
      button("Cancel", () => close(false)),
    );
    (async () => {
      let plan;
      try {
        plan = await post(`/v1/issuers/${encodeURIComponent(i.id)}/revoke`, { reason: reason.value, reissue: true, dryRun: true });
      } catch (error) {
        body.replaceChildren(notAvailable(error, "Dry run"));
        return;
      }
      const typed = h("input", { type: "text", autocomplete: "off", spellcheck: "false" });
      const go = h("button", { type: "button", class: "danger", disabled: true }, "Revoke and re-issue");
      typed.addEventListener("input", () => {
        go.disabled = typed.value.trim() !== i.id;
      });
      body.replaceChildren(
        h("p", {}, "Dry run: nothing has changed yet. This will:"),
        h(
          "ul",
          {},
          h("li", {}, "revoke ", h("strong", {}, i.subject), ` (${i.id}); relying parties refuse everything it signed`),
          h("li", {}, replacementPlan(plan.replacement).line),
          h(
            "li",
            {},
            replacementPlan(plan.replacement).under
              ? `re-issue ${plan.affected} live certificate${plan.affected === 1 ? "" : "s"} under ${replacementPlan(plan.replacement).under}`
              : `not re-issue its ${plan.affected} live certificate${plan.affected === 1 ? "" : "s"}: there is no intermediate to re-issue them under`,
          ),
        ),
        labelled("Reason", reason),
        labelled("Type the issuer ID to confirm", typed, i.id),
      );
      footer.append(go);
      go.addEventListener("click", async () => {
        go.disabled = true;
        typed.disabled = true;
        reason.disabled = true;
        let started;
        try {
          started = await post(`/v1/issuers/${encodeURIComponent(i.id)}/revoke`, { reason: reason.value, reissue: true });
        } catch (error) {
          body.append(message(`Not revoked: ${error.message}`));
          go.disabled = false;
          typed.disabled = false;
          return;
        }
        const bar = h("progress", { max: String(Math.max(1, started.affected ?? 0)), value: "0", "aria-label": "Re-issue progress" });
        const revokedLine = `Revoked ${started.revoked} (${reason.value}); ${started.replacement ? `${started.replacement} signs new certificates` : "no intermediate signs new certificates"}`;
        const line = h("p", { role: "status" }, `${revokedLine}. Re-issuing…`);
        body.append(bar, line);
        footer.replaceChildren(button("Close", () => close(true)));
        page.notify(`${revokedLine}. Re-issuing ${started.affected} certificate${started.affected === 1 ? "" : "s"} in the background…`);
        void page.reload().then(page.follow);
        // The run goes on in the API whether or not this dialog stays open: its outcome also lands on the page.
        for (;;) {
          /** @type {import("./api-types.js").ReissueProgress} */
          let p;
          try {
            p = await get(`/v1/issuers/${encodeURIComponent(i.id)}/reissue`);
          } catch (error) {
            line.textContent = `Progress not available: ${error.message}`;
            break;
          }
          const failedCount = p.failedCount ?? p.failed?.length ?? 0;
          bar.max = Math.max(1, p.total);
          bar.value = p.reissued + failedCount;
          // Kept in the inventory: a run whose process died stops reporting and reads as stalled.
          const state = p.done ? (p.error ? `. Stopped: ${p.error}` : ". Done.") : p.stalled ? ". Stalled: the process running it stopped reporting; revoke again to resume." : "…";
          line.textContent = `Re-issued ${p.reissued} of ${p.total}; ${failedCount} failed${state}`;
          if (p.done || p.stalled) {
            page.notify(`${revokedLine}. Re-issued ${p.reissued} of ${p.total} certificates; ${failedCount} failed${state}`, failedCount || p.error || p.stalled ? "warning" : "status");
            if (p.failed?.length)
              append(body, [
                h(
                  "ul",
                  {},
                  p.failed.map((f) => h("li", {}, `${f.serial}: ${f.error}`)),
                ),
              ]);
            break;
          }
          if (!page.shown()) return;
          await new Promise((resolve) => setTimeout(resolve, 1000));
        }
        await page.reload();
      });
    })();
    return h("div", {}, body, footer);
  });
  await page.reload();
}
