// The operator tasks besides certificates and issuers: the scheduler's jobs, CRLs, the
// health checks and the operators themselves. Each action is the console twin of a `pki`
// command and goes through the same code on the server. Ceremonies that need the root
// token's PIN stay on the command line, and the pages say so where it matters.
import { del, get, itemsOf, post } from "./api.js";
import { badge, button, clear, confirmDialog, copyButton, dateTime, duration, h, labelled, message, relative, table } from "./dom.js";
import { issuerLink, refreshing } from "./pages.js";

/**
 * A time with seconds: several runs can fall in the same minute.
 * @param {string | null | undefined} iso
 */
function preciseTime(iso) {
  if (!iso) return "—";
  return h("time", { datetime: iso }, `${iso.slice(0, 19).replace("T", " ")} UTC`);
}

const entries = (/** @type {number} */ n) => (n === 1 ? "1 entry" : `${n} entries`);

const countsText = (/** @type {Record<string, number> | null | undefined} */ counts) =>
  Object.entries(counts ?? {})
    .map(([k, v]) => `${k} ${v}`)
    .join(", ") || "—";

/** Where an action's outcome is announced (role=status/alert inside). */
const resultArea = (/** @type {string} */ id) => h("div", { id, "aria-live": "polite" });

// ---------- scheduler

/** @param {import("./api-types.js").JobState} j */
function jobState(j) {
  if (j.leaseHolder && j.leaseUntil && new Date(j.leaseUntil).getTime() > Date.now()) return "running";
  if (j.consecutiveFailures > 0) return "failed";
  if (!j.lastRun) return "pending";
  return "ok";
}

/**
 * @param {HTMLElement} container
 * @param {import("./app.js").Route} route
 * @param {import("./app.js").PageContext} ctx
 */
export async function schedulerPage(container, route, ctx) {
  document.title = "Scheduler · PKI console";
  const result = resultArea("run-result");
  /** @type {import("./pages.js").RefreshHandle} */
  const section = {};
  container.append(
    h("h1", {}, "Scheduler"),
    h(
      "p",
      { class: "hint" },
      "The jobs every scheduler replica shares: renewal, alerts, issuer lifecycle and housekeeping. ",
      "“Run now” runs one in the API process under the job’s lease, as ",
      h("code", {}, "pki scheduler run-once JOB"),
      " does, so it never overlaps a scheduler that is running it.",
    ),
    result,
  );
  const runNow = async (/** @type {string} */ job, /** @type {HTMLButtonElement} */ btn) => {
    btn.disabled = true;
    clear(result).append(message(`Running ${job}…`, "status"));
    try {
      const r = await post(`/v1/scheduler/jobs/${encodeURIComponent(job)}/run`);
      const text = `${job}: ${r.outcome} (${countsText(r.counts)})${r.error ? `: ${r.error}` : ""}`;
      clear(result).append(message(text, r.outcome === "ok" ? "status" : "error"));
    } catch (error) {
      clear(result).append(message(`${job} did not run: ${error.message}`));
    } finally {
      btn.disabled = false;
      await section.refresh?.();
    }
  };
  return refreshing(
    container,
    route,
    ctx,
    async (/** @type {HTMLElement} */ target) => {
      /** @type {import("./api-types.js").SchedulerStatus} */
      const s = await get("/v1/scheduler");
      target.append(
        table(
          "Jobs",
          ["Job", "State", "Last run", "Next due", "Failures in a row", "Actions"],
          s.jobs.map((j) => {
            const run = button("Run now", (event) => runNow(j.job, /** @type {HTMLButtonElement} */ (event.currentTarget)), { "aria-label": `Run now: ${j.job}` });
            return [
              h("span", { class: "mono" }, j.job),
              badge(jobState(j)),
              j.lastRun
                ? h(
                    "span",
                    { class: "last-run", "data-job": j.job, "data-run-id": j.lastRun.id },
                    badge(j.lastRun.outcome),
                    " ",
                    preciseTime(j.lastRun.startedAt),
                    h("br"),
                    h("span", { class: "hint" }, j.lastRun.error ? j.lastRun.error : countsText(j.lastRun.counts)),
                  )
                : h("span", { class: "last-run", "data-job": j.job }, "never run"),
              j.nextDueAt ? [dateTime(j.nextDueAt), h("br"), h("span", { class: "hint" }, relative(j.nextDueAt))] : "when a scheduler starts",
              String(j.consecutiveFailures),
              run,
            ];
          }),
          "No jobs.",
        ),
        table(
          "Latest runs, newest first",
          ["Started", "Job", "Outcome", "Runner", "Counts or error"],
          s.runs.map((r) => [preciseTime(r.startedAt), h("span", { class: "mono" }, r.job), badge(r.outcome), h("span", { class: "mono" }, r.runner), r.error ?? countsText(r.counts)]),
          "No job has run yet.",
        ),
      );
    },
    section,
  );
}

// ---------- CRLs

const crlCell = (/** @type {import("./api-types.js").CrlInfo | null | undefined} */ c) =>
  c ? [`#${c.number}`, h("br"), h("span", { class: "hint" }, `${entries(c.entries)}, ${duration(c.ageSeconds)} old`)] : "none";

/**
 * @param {HTMLElement} container
 * @param {import("./app.js").Route} route
 * @param {import("./app.js").PageContext} ctx
 */
export async function crlsPage(container, route, ctx) {
  document.title = "CRLs · PKI console";
  const result = resultArea("publish-result");
  /** @type {import("./pages.js").RefreshHandle} */
  const section = {};
  const publish = async (/** @type {string | undefined} */ issuerId, /** @type {HTMLButtonElement} */ btn) => {
    btn.disabled = true;
    clear(result).append(message(issuerId ? `Publishing ${issuerId}’s CRLs…` : "Publishing every issuer’s CRLs…", "status"));
    try {
      /** @type {import("./api-types.js").CrlPublished} */
      const r = await post("/v1/crls/publish", issuerId ? { issuerId } : {});
      clear(result).append(message(`Published: ${r.published.map((p) => `${p.issuerId} full #${p.full.number}, delta #${p.delta.number}`).join("; ") || "nothing (no issuer publishes)"}`, "status"));
    } catch (error) {
      clear(result).append(message(`Not published: ${error.message}`));
    } finally {
      btn.disabled = false;
      await section.refresh?.();
    }
  };
  const all = button("Publish all now", (event) => publish(undefined, /** @type {HTMLButtonElement} */ (event.currentTarget)), { class: "primary", id: "publish-all" });
  container.append(
    h("h1", {}, "CRLs"),
    h(
      "p",
      { class: "hint" },
      "The CRL publisher re-signs each intermediate’s CRLs on a schedule and after every revocation. “Publish” signs a new full and delta CRL now, as ",
      h("code", {}, "pki crl publish"),
      " does.",
    ),
    message(
      "A root’s CRL (and its OCSP answers about its intermediates) is signed with the root key: with pki crl sign-root on the command line, and by every rotation or revocation of an intermediate, which the Issuers page can run only when the API process has the root token’s PIN (PKI_ROOT_PIN, PKI_ROOT_PIN_FILE, or the quickstart’s .pki/pki-root.pin, which npm start reads). Publish here signs intermediates’ CRLs only.",
      "warning",
    ),
    h("div", { class: "actions" }, all),
    result,
  );
  return refreshing(
    container,
    route,
    ctx,
    async (/** @type {HTMLElement} */ target) => {
      const [states, issuers] = await Promise.all([get("/v1/crls"), get("/v1/issuers")]);
      /** @type {Map<string, import("./api-types.js").CrlState>} */
      const byId = new Map(itemsOf(states).map((/** @type {import("./api-types.js").CrlState} */ s) => [s.issuerId, s]));
      /** @type {import("./api-types.js").Issuer[]} */
      const shown = itemsOf(issuers).filter((/** @type {import("./api-types.js").Issuer} */ i) => byId.has(i.id) || i.status === "active" || i.status === "retired" || i.status === "revoked");
      target.append(
        table(
          "CRLs per issuer",
          ["Issuer", "Role", "Full CRL", "Published", "Next update", "Delta CRL", "Actions"],
          shown.map((i) => {
            const s = /** @type {Partial<import("./api-types.js").CrlState>} */ (byId.get(i.id) ?? {});
            // A revoked or retired intermediate keeps publishing while certificates it signed are unexpired.
            const canPublish = i.role === "intermediate" && i.status !== "staged" && i.status !== "expired";
            return [
              [issuerLink(i.id), h("br"), h("span", { class: "hint" }, i.subject)],
              [i.role, " ", badge(i.status)],
              h("span", { class: "crl-number", "data-issuer": i.id }, s.full ? `#${s.full.number}` : "none"),
              s.full ? [dateTime(s.full.thisUpdate), h("br"), h("span", { class: "hint" }, `${duration(s.full.ageSeconds)} ago, ${entries(s.full.entries)}`)] : "—",
              s.full ? [dateTime(s.full.nextUpdate), h("br"), h("span", { class: "hint" }, relative(s.full.nextUpdate))] : "—",
              crlCell(s.delta),
              canPublish
                ? button("Publish now", (event) => publish(i.id, /** @type {HTMLButtonElement} */ (event.currentTarget)), { "aria-label": `Publish now: ${i.id}` })
                : i.role === "root"
                  ? h("span", { class: "hint" }, "CLI: pki crl sign-root")
                  : "—",
            ];
          }),
          "No issuer publishes CRLs.",
        ),
      );
    },
    section,
  );
}

// ---------- health

/**
 * @param {HTMLElement} container
 * @param {import("./app.js").Route} route
 * @param {import("./app.js").PageContext} ctx
 */
export async function healthPage(container, route, ctx) {
  document.title = "Health · PKI console";
  container.append(
    h("h1", {}, "Health"),
    h(
      "p",
      { class: "hint" },
      "The checks ",
      h("code", {}, "pki doctor"),
      " runs, run now in the API process: the token signs with each issuer key, the database and clocks, issuer validity, CRL freshness, scheduler jobs.",
    ),
  );
  return refreshing(container, route, ctx, async (/** @type {HTMLElement} */ target) => {
    /** @type {import("./api-types.js").DoctorReport} */
    const report = await get("/v1/doctor");
    const n = (/** @type {string} */ status) => report.checks.filter((c) => c.status === status).length;
    const fails = n("fail");
    const warns = n("warn");
    target.append(
      message(
        `${n("ok")} ok, ${warns} warning${warns === 1 ? "" : "s"}, ${fails} failure${fails === 1 ? "" : "s"} (as of ${dateTime(report.generatedAt)})`,
        fails ? "error" : warns ? "warning" : "status",
      ),
      table(
        "Checks",
        ["Check", "Status", "Detail"],
        report.checks.map((c) => [h("span", { class: "check-name" }, c.name), h("span", { "data-status": c.status }, badge(c.status)), c.detail]),
        "No checks ran.",
      ),
    );
  });
}

// ---------- operators

/**
 * @param {HTMLElement} container
 * @param {import("./app.js").Route} _route
 * @param {import("./app.js").PageContext} ctx
 */
export async function operatorsPage(container, _route, ctx) {
  document.title = "Operators · PKI console";
  const created = h("div", { id: "created" });
  const list = h("section", { id: "operators", "aria-label": "Operators" });
  const status = h("div");
  const name = h("input", { type: "text", name: "name", required: true, pattern: "[a-z][a-z0-9._\\-]*", maxlength: "63", autocomplete: "off", spellcheck: "false" });
  const form = h(
    "form",
    {
      class: "card",
      id: "add-operator",
      onsubmit: async (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        clear(status);
        try {
          const r = await post("/v1/admins", { name: name.value.trim() });
          form.reset();
          showToken(created, r);
          await load();
        } catch (error) {
          status.append(message(`Not added: ${error.message}`));
        }
      },
    },
    h("h2", {}, "Add an operator"),
    labelled("Name", name, "lower-case letters, digits, '.', '_', '-', starting with a letter; their actions are audited as admin:NAME"),
    status,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Add")),
  );
  container.append(
    h("h1", {}, "Operators"),
    h("p", { class: "hint" }, "Each person has their own admin token (", h("code", {}, "pki admin add|list|remove"), "). Removing one stops their token and ends their console sessions at once."),
    created,
    list,
    form,
  );
  const load = async () => {
    const operators = itemsOf(await get("/v1/admins"));
    if (!ctx.isCurrent()) return;
    list.replaceChildren(
      table(
        "Operators",
        ["Name", "State", "Created", "Removed", "Actions"],
        operators.map((/** @type {import("./api-types.js").Operator} */ o) => [
          h("span", { class: "operator-name" }, o.name, o.name === ctx.operator && !o.revokedAt ? " (you)" : ""),
          badge(o.revokedAt ? "revoked" : "active"),
          dateTime(o.createdAt),
          o.revokedAt ? dateTime(o.revokedAt) : "—",
          o.revokedAt ? "—" : button("Remove…", () => remove(o.name, ctx, load), { class: "danger", "aria-label": `Remove ${o.name}` }),
        ]),
        "No operators.",
      ),
    );
  };
  await load();
}

/** @param {HTMLElement} created @param {import("./api-types.js").OperatorCreated} r */
function showToken(created, r) {
  const token = h("input", { type: "text", readonly: true, value: r.token, id: "new-admin-token", class: "mono", spellcheck: "false" });
  created.replaceChildren(
    h(
      "section",
      { class: "card token", "aria-labelledby": "admin-token-title" },
      h("h2", { id: "admin-token-title" }, `Operator “${r.name}” added`),
      message("Give them this token now: it is shown only once (the CA keeps only its SHA-256).", "warning"),
      labelled("Admin token", token),
      h(
        "div",
        { class: "actions" },
        copyButton(r.token, "Copy token"),
        button("Done (hide the token)", () => created.replaceChildren()),
      ),
    ),
  );
  token.focus();
  token.select();
}

/** @param {string} name @param {import("./app.js").PageContext} ctx @param {() => Promise<void>} reload */
async function remove(name, ctx, reload) {
  const self = name === ctx.operator;
  const ok = await confirmDialog(
    `Remove ${name}?`,
    h(
      "p",
      {},
      self
        ? "This is you: your token stops working and you are logged out at once."
        : "Their token stops working and their console sessions end at once. This cannot be undone; add them again for a new token.",
    ),
    "Remove",
    true,
  );
  if (!ok) return;
  try {
    await del(`/v1/admins/${encodeURIComponent(name)}`);
  } catch (error) {
    document.getElementById("operators")?.prepend(message(error.message));
    return;
  }
  if (self) return ctx.rerender();
  await reload();
}
