// The issuer hierarchy (root → intermediates), their health, and the lifecycle actions:
// rotate, activate a staged intermediate, revoke with re-issue (dry run first).
import { get, itemsOf, post } from "./api.js";
import { append, badge, button, clear, confirmDialog, dateTime, duration, facts, h, labelled, link, localToIso, message, openDialog, timeEl } from "./dom.js";
import { notAvailable } from "./pages.js";

export async function issuersPage(container, route, ctx) {
  document.title = "Issuers · PKI console";
  container.append(
    h("h1", {}, "Issuers"),
    h(
      "p",
      { class: "hint", id: "ceremonies" },
      "Rotating and revoking an intermediate sign with the root key: they work here only when the API process has the root token’s PIN (PKI_ROOT_PIN or PKI_ROOT_PIN_FILE); otherwise run ",
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
  const toggle = h("input", {
    type: "checkbox",
    id: "auto-refresh",
    checked: on,
    onchange: () => {
      const params = new URLSearchParams(route.params);
      if (toggle.checked) params.set("refresh", "1");
      else params.delete("refresh");
      ctx.navigate("issuers", params, { replace: true });
    },
  });
  const tree = h("div", { id: "issuer-tree", "aria-live": "polite" });
  const updated = h("span", { class: "hint" });
  container.append(
    h(
      "div",
      { class: "toolbar" },
      h("label", { class: "check", for: "auto-refresh" }, toggle, " Auto refresh (every 15 s)"),
      button("Refresh now", () => load()),
      updated,
    ),
    tree,
  );
  const load = async () => {
    let list;
    try {
      list = await get("/v1/issuers");
    } catch (error) {
      tree.replaceChildren(notAvailable(error, "Issuers"));
      return;
    }
    if (!ctx.isCurrent()) return;
    tree.replaceChildren(renderTree(itemsOf(list), focus, load));
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
  };
  await load();
  const focused = focus && document.getElementById(`issuer-${focus}`);
  if (focused) focused.scrollIntoView({ block: "center" });
  const timer = on ? setInterval(load, 15_000) : null;
  return () => timer && clearInterval(timer);
}

function renderTree(issuers, focus, reload) {
  const children = new Map();
  for (const i of issuers) {
    const key = i.parentId ?? "";
    if (!children.has(key)) children.set(key, []);
    children.get(key).push(i);
  }
  const ids = new Set(issuers.map((i) => i.id));
  // Roots, and any issuer whose parent is not in the list, start a tree.
  const tops = issuers.filter((i) => !i.parentId || !ids.has(i.parentId));
  const node = (i) => {
    const kids = children.get(i.id) ?? [];
    return h("li", {}, issuerCard(i, focus === i.id, reload), kids.length ? h("ul", { class: "tree" }, kids.map(node)) : null);
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
          button("Rotate intermediate…", () => rotate(hierarchy, reload), { class: "primary" }),
        ),
        h("ul", { class: "tree" }, tops.filter((i) => i.hierarchy === hierarchy).map(node)),
      ),
    ),
  );
}

function ocspHealth(ocsp) {
  if (!ocsp) return "no responder certificate";
  const left = (new Date(ocsp.responderNotAfter).getTime() - Date.now()) / 1000;
  const state = left <= 0 ? "expired" : left < 86400 ? "expires soon" : "ok";
  return [badge(state === "ok" ? "ok" : state === "expired" ? "expired" : "warning"), ` responder ${ocsp.responderSerial}, until ${dateTime(ocsp.responderNotAfter)}`];
}

function issuerCard(i, focused, reload) {
  const actions = h("div", { class: "actions" });
  if (i.role === "intermediate" && i.status === "staged") actions.append(button("Activate…", () => activate(i, reload)));
  if (i.role === "intermediate" && i.status !== "revoked" && i.status !== "expired") actions.append(button("Revoke and re-issue…", () => revokeIssuer(i, reload), { class: "danger" }));
  const crl = i.crl;
  return h(
    "article",
    { class: `card issuer${focused ? " focused" : ""}`, id: `issuer-${i.id}`, "data-status": i.status, "data-role": i.role, "aria-label": `${i.subject} (${i.id})` },
    h("h3", {}, h("span", { class: "issuer-name" }, i.subject), " ", badge(i.status), " ", h("span", { class: "tag" }, i.role)),
    facts([
      ["ID", h("span", { class: "mono issuer-id" }, i.id)],
      ["Serial", h("span", { class: "mono" }, i.serial ?? "—")],
      ["Valid", [timeEl(i.notBefore), " – ", timeEl(i.notAfter)]],
      ["Key", i.keyAlgorithm ?? "—"],
      [
        "Blast radius",
        i.liveCertificates === undefined
          ? "not available"
          : link(`#/certificates?issuerId=${encodeURIComponent(i.id)}&status=valid`, `${i.liveCertificates} live certificate${i.liveCertificates === 1 ? "" : "s"}`),
      ],
      ["CRL", crl ? `#${crl.number}, published ${duration(crl.ageSeconds ?? 0)} ago, next by ${dateTime(crl.nextUpdate)}` : i.crl === null ? "none published" : "not available"],
      ["OCSP", i.ocsp === undefined ? "not available" : ocspHealth(i.ocsp)],
      ...(i.revokedAt ? [["Revoked", [timeEl(i.revokedAt), ` (${i.revocationReason ?? "unspecified"})`]]] : []),
    ]),
    actions,
  );
}

async function rotate(hierarchy, reload) {
  await openDialog(`Rotate the intermediate of “${hierarchy}”`, (close) => {
    const now = h("input", { type: "radio", name: "when", value: "now", checked: true, id: "rotate-now" });
    const later = h("input", { type: "radio", name: "when", value: "at", id: "rotate-at" });
    const at = h("input", { type: "datetime-local", name: "activateAt" });
    const status = h("div");
    const go = h("button", { type: "submit", class: "primary" }, "Rotate");
    return h(
      "form",
      {
        onsubmit: async (event) => {
          event.preventDefault();
          const body = { hierarchy };
          if (later.checked) {
            const iso = localToIso(at.value);
            if (!iso) {
              clear(status).append(message("Choose the date and time the new intermediate takes over."));
              at.focus();
              return;
            }
            body.activateAt = iso;
          }
          go.disabled = true;
          clear(status).append(message("Rotating…", "status"));
          try {
            const r = await post("/v1/issuers/rotate", body);
            clear(status).append(message(`Done: new intermediate ${r.id ?? r.issuer?.id ?? ""} (${r.status ?? r.issuer?.status ?? "created"}).`, "status"));
            await reload();
            close(true);
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
        labelled("Take over at (your local time)", at),
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

async function activate(i, reload) {
  const ok = await confirmDialog(
    `Activate ${i.id}?`,
    h("p", {}, "The staged intermediate ", h("strong", {}, i.subject), " becomes the one that signs new certificates; the active one is retired."),
    "Activate",
  );
  if (!ok) return;
  try {
    const r = await post(`/v1/issuers/${encodeURIComponent(i.id)}/activate`);
    await reload();
    document.getElementById("issuer-tree")?.prepend(message(`Activated ${r.activated}; retired ${(r.retired ?? []).join(", ") || "none"}.`, "status"));
  } catch (error) {
    document.getElementById("issuer-tree")?.prepend(notAvailable(error, "Activate"));
  }
}

async function revokeIssuer(i, reload) {
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
          h("li", {}, plan.replacement ? `sign new certificates with ${plan.replacement}` : "leave the hierarchy with no replacement intermediate"),
          h("li", {}, `re-issue ${plan.affected} live certificate${plan.affected === 1 ? "" : "s"} under the replacement`),
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
        const line = h("p", { role: "status" }, `Revoked ${started.revoked}; replacement ${started.replacement ?? "none"}. Re-issuing…`);
        body.append(bar, line);
        for (;;) {
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
          if (!body.isConnected) return;
          await new Promise((resolve) => setTimeout(resolve, 1000));
        }
        await reload();
      });
    })();
    return h("div", {}, body, footer);
  });
  await reload();
}
