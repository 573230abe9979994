// Provisioners: who may enrol which names with which profiles. A token provisioner's token
// is shown once, with a ready-to-run enrolment command; an ACME provisioner shows its
// directory URL and whether accounts need an external account binding (EAB) key, and makes
// EAB keys (shown once, like `pki provisioner eab`).
import { del, get, itemsOf, patch, post } from "./api.js";
import { badge, button, clear, confirmDialog, copyButton, duration, h, labelled, message, openDialog, table, timeEl, urlCheckbox } from "./dom.js";
import { PROFILES, notAvailable } from "./pages.js";

/** @typedef {import("./api-types.js").Provisioner} Provisioner */
/** @typedef {import("./api-types.js").ProvisionerCreated} ProvisionerCreated */

const NAME_HINT = "one per line: DNS:api.example.com, DNS:*.svc.example.com, DNS:.example.com, IP:10.0.0.0/8, URI:spiffe://…/*, email:@example.com, CN:batch-*";

/**
 * @param {HTMLElement} container
 * @param {import("./app.js").Route} route
 * @param {import("./app.js").PageContext} ctx
 */
export async function provisionersPage(container, route, ctx) {
  document.title = "Provisioners · PKI console";
  const created = h("div", { id: "created" });
  const list = h("section", { id: "provisioners", "aria-label": "Provisioners" });
  // Removed provisioners stay in the inventory (their certificates name them): shown on request, as pki provisioner list --all.
  const showRemoved = route.params.get("all") === "1";
  container.append(
    h("h1", {}, "Provisioners"),
    created,
    h(
      "div",
      { class: "toolbar" },
      urlCheckbox({
        id: "show-removed",
        label: "Show removed provisioners",
        params: route.params,
        param: "all",
        onChange: (params) => ctx.navigate("provisioners", params, { replace: true }),
      }),
    ),
    list,
    createForm(created, () => load()),
  );
  const load = async () => {
    let r;
    try {
      r = await get(`/v1/provisioners${showRemoved ? "?all=true" : ""}`);
    } catch (error) {
      list.replaceChildren(notAvailable(error, "Provisioners"));
      return;
    }
    if (!ctx.isCurrent()) return;
    list.replaceChildren(
      table(
        "Provisioners",
        ["Name", "Type", "Status", "Profiles", "Names", "Max lifetime", "Hierarchy", "Created", "Actions"],
        itemsOf(r).map((/** @type {Provisioner} */ p) => [
          h("span", { class: "prov-name" }, p.name),
          typeCell(p),
          badge(p.removedAt ? "removed" : p.disabled ? "disabled" : "enabled"),
          p.profiles.join(", "),
          h(
            "ul",
            { class: "sans" },
            p.names.map((n) => h("li", {}, n)),
          ),
          duration(p.maxTtlSeconds),
          p.hierarchy,
          timeEl(p.createdAt),
          p.removedAt
            ? ["removed ", timeEl(p.removedAt)]
            : h(
                "div",
                { class: "actions compact" },
                button("Edit scope…", () => editScope(p, load), { "aria-label": `Edit scope of ${p.name}` }),
                p.type === "acme" ? button("New EAB key…", () => newEabKey(p, created, load), { "aria-label": `New EAB key for ${p.name}` }) : null,
                button(p.disabled ? "Enable" : "Disable…", () => toggle(p, load), { "aria-label": `${p.disabled ? "Enable" : "Disable"} ${p.name}` }),
                button("Remove…", () => remove(p, load), { class: "danger", "aria-label": `Remove ${p.name}` }),
              ),
        ]),
        "No provisioner yet: create one below.",
      ),
    );
  };
  await load();
}

const profileBoxes = (/** @type {string[]} */ chosen, /** @type {string} */ prefix) =>
  h(
    "fieldset",
    { class: "inline" },
    h("legend", {}, "Profiles"),
    PROFILES.map((p) =>
      h("span", { class: "check" }, h("input", { type: "checkbox", name: "profiles", value: p, id: `${prefix}-${p}`, checked: chosen.includes(p) }), h("label", { for: `${prefix}-${p}` }, p)),
    ),
  );

const linesOf = (/** @type {string} */ text) =>
  text
    .split("\n")
    .map((s) => s.trim())
    .filter(Boolean);

/**
 * What kind of provisioner it is and, for ACME, where clients find it and whether they need an EAB key.
 * @param {Provisioner} p
 */
function typeCell(p) {
  if (p.type !== "acme") return h("span", { class: "tag prov-type" }, "token");
  const eab = p.eabRequired ? `EAB required, ${p.unusedEabKeys ?? 0} unused key${p.unusedEabKeys === 1 ? "" : "s"}` : "EAB optional";
  return h("div", { class: "prov-acme" }, h("span", { class: "tag prov-type" }, "ACME"), h("div", { class: "mono acme-directory" }, p.acmeDirectory ?? ""), h("div", { class: "hint prov-eab" }, eab));
}

/** @param {HTMLElement} created where the new provisioner is shown @param {() => Promise<void>} reload */
function createForm(created, reload) {
  const status = h("div");
  const type = h(
    "select",
    { name: "type", id: "new-type" },
    h("option", { value: "token" }, "token: enrols with a bearer token"),
    h("option", { value: "acme" }, "ACME: serves an ACME directory (certbot, lego, Caddy…)"),
  );
  const eab = h("input", { type: "checkbox", name: "eab", id: "new-eab", disabled: true });
  type.addEventListener("change", () => {
    // EAB only means something for ACME accounts.
    eab.disabled = type.value !== "acme";
    if (eab.disabled) eab.checked = false;
  });
  const form = h(
    "form",
    {
      class: "card",
      id: "create-provisioner",
      onsubmit: async (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        const data = new FormData(form);
        /** @type {import("./api-types.js").ProvisionerBody} */
        const body = {
          name: String(data.get("name") ?? "").trim(),
          profiles: data.getAll("profiles").map(String),
          names: linesOf(String(data.get("names") ?? "")),
          maxTtlSeconds: Number(data.get("maxTtlSeconds")),
        };
        const hierarchy = String(data.get("hierarchy") ?? "").trim();
        if (hierarchy) body.hierarchy = hierarchy;
        if (type.value === "acme") {
          body.type = "acme";
          body.eab = eab.checked;
        }
        clear(status);
        try {
          const p = await post("/v1/provisioners", body);
          form.reset();
          eab.disabled = true;
          if (body.type === "acme") showAcme(created, p, body.eab, reload);
          else showToken(created, p);
          await reload();
        } catch (error) {
          status.append(message(`Not created: ${error.message}`));
        }
      },
    },
    h("h2", {}, "Create a provisioner"),
    labelled("Name", h("input", { type: "text", name: "name", required: true, pattern: "[a-z0-9][a-z0-9._\\-]*", maxlength: "63" }), "lower-case letters, digits, '.', '_', '-'"),
    labelled("Type", type),
    h("div", { class: "check" }, eab, h("label", { for: "new-eab" }, "ACME accounts need an external account binding (EAB) key")),
    profileBoxes(["mtls"], "new"),
    labelled("Names it may enrol", h("textarea", { name: "names", rows: "3", required: true }), NAME_HINT),
    labelled("Maximum lifetime (seconds)", h("input", { type: "number", name: "maxTtlSeconds", min: "60", value: "86400", required: true })),
    labelled("Hierarchy", h("input", { type: "text", name: "hierarchy", placeholder: "default" })),
    status,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create")),
  );
  return form;
}

/**
 * A new ACME provisioner: where clients point, and (with EAB) the way to its first key.
 * @param {HTMLElement} created @param {ProvisionerCreated & { acmeDirectory: string }} p an ACME provisioner, just made
 * @param {boolean | undefined} eabRequired @param {() => Promise<void>} reload
 */
function showAcme(created, p, eabRequired, reload) {
  const example = exampleName(p.names);
  const command = [
    "# certbot trusts the CA through its root certificate (.pki/root.pem on the CA host).",
    `REQUESTS_CA_BUNDLE=root.pem certbot certonly --server ${shellQuote(p.acmeDirectory)} \\`,
    `  --standalone -d ${shellQuote(example)}${eabRequired ? " --eab-kid=KID --eab-hmac-key=HMAC_KEY" : ""}`,
  ].join("\n");
  created.replaceChildren(
    h(
      "section",
      { class: "card token", "aria-labelledby": "acme-title" },
      h("h2", { id: "acme-title" }, `ACME provisioner “${p.name}” created`),
      labelled("ACME directory URL", h("input", { type: "text", readonly: true, value: p.acmeDirectory, id: "new-acme-directory", class: "mono", spellcheck: "false" })),
      h("div", { class: "actions" }, copyButton(p.acmeDirectory, "Copy directory URL")),
      eabRequired ? message("New accounts need an EAB key: make one per client with “New EAB key…”.", "warning") : null,
      h("pre", { id: "acme-command", tabindex: "0" }, h("code", {}, command)),
      h(
        "div",
        { class: "actions" },
        copyButton(command, "Copy command"),
        eabRequired ? button("New EAB key…", () => newEabKey(p, created, reload), { class: "primary" }) : null,
        button("Done", () => created.replaceChildren()),
      ),
    ),
  );
}

/**
 * Makes an EAB key and shows it once, with the certbot and lego options that use it.
 * @param {Provisioner | ProvisionerCreated} p @param {HTMLElement} created @param {() => Promise<void>} reload
 */
async function newEabKey(p, created, reload) {
  let key;
  try {
    key = await post(`/v1/provisioners/${encodeURIComponent(p.name)}/eab-keys`);
  } catch (error) {
    created.replaceChildren(message(`No EAB key made: ${error.message}`));
    return;
  }
  const usage = [
    // name=value: a base64url key may start with "-", which would read as an option on its own
    `certbot --server ${shellQuote(key.acmeDirectory)} --eab-kid=${shellQuote(key.kid)} --eab-hmac-key=${shellQuote(key.hmacKey)} …`,
    `lego --server ${shellQuote(key.acmeDirectory)} --eab --kid=${shellQuote(key.kid)} --hmac=${shellQuote(key.hmacKey)} …`,
  ].join("\n");
  created.replaceChildren(
    h(
      "section",
      { class: "card token", "aria-labelledby": "eab-title" },
      h("h2", { id: "eab-title" }, `EAB key for “${p.name}”`),
      message("Copy the HMAC key now: it is shown only once. The key is bound to the first ACME account that uses it.", "warning"),
      labelled("Key ID (kid)", h("input", { type: "text", readonly: true, value: key.kid, id: "eab-kid", class: "mono", spellcheck: "false" })),
      labelled("HMAC key", h("input", { type: "text", readonly: true, value: key.hmacKey, id: "eab-hmac", class: "mono", spellcheck: "false" })),
      h("pre", { id: "eab-usage", tabindex: "0" }, h("code", {}, usage)),
      h(
        "div",
        { class: "actions" },
        copyButton(key.hmacKey, "Copy HMAC key"),
        copyButton(usage, "Copy commands"),
        button("Done (hide the key)", () => created.replaceChildren()),
      ),
    ),
  );
  /** @type {HTMLElement | null} */ (created.querySelector("#eab-hmac"))?.focus();
  await reload();
}

const shellQuote = (/** @type {unknown} */ s) => `'${String(s).replaceAll("'", `'\\''`)}'`;

/**
 * An example name the provisioner may enrol, from its first DNS pattern.
 * @param {string[]} names
 */
function exampleName(names) {
  const dns = names.find((n) => n.startsWith("DNS:"));
  if (!dns) return "service.example";
  const pattern = dns.slice(4);
  if (pattern.startsWith("*.")) return `svc${pattern.slice(1)}`;
  if (pattern.startsWith(".")) return `svc${pattern}`;
  return pattern;
}

/** @param {ProvisionerCreated} p */
function enrolCommand(p) {
  const name = exampleName(p.names);
  return [
    "# The CA's root certificate is root.pem (.pki/root.pem on the CA host).",
    `API=${shellQuote(location.origin)}`,
    `TOKEN=${shellQuote(p.token)}`,
    `openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout svc.key -outform DER -out svc.csr.der \\`,
    `  -subj ${shellQuote(`/CN=${name}`)} -addext ${shellQuote(`subjectAltName=DNS:${name}`)}`,
    `curl -sS --fail-with-body --cacert root.pem -H "Authorization: Bearer $TOKEN" \\`,
    `  -H 'Content-Type: application/pkcs10' --data-binary @svc.csr.der "$API/v1/certificates?profile=${p.profiles[0] ?? "mtls"}" > issued.json`,
  ].join("\n");
}

/** @param {HTMLElement} created @param {ProvisionerCreated & { token: string }} p a token provisioner, just made */
function showToken(created, p) {
  const token = h("input", { type: "text", readonly: true, value: p.token, id: "new-token", class: "mono", spellcheck: "false" });
  const command = enrolCommand(p);
  created.replaceChildren(
    h(
      "section",
      { class: "card token", "aria-labelledby": "token-title" },
      h("h2", { id: "token-title" }, `Provisioner “${p.name}” created`),
      message("Copy its token now: it is shown only once (the CA keeps only its hash).", "warning"),
      labelled("Token", token),
      h("div", { class: "actions" }, copyButton(p.token, "Copy token")),
      h("h3", {}, "Enrol a service with it"),
      h("pre", { id: "enrol-command", tabindex: "0" }, h("code", {}, command)),
      h(
        "div",
        { class: "actions" },
        copyButton(command, "Copy command"),
        button("Done (hide the token)", () => created.replaceChildren()),
      ),
    ),
  );
  token.focus();
  token.select();
}

/** @param {Provisioner} p @param {() => unknown} reload */
async function editScope(p, reload) {
  await openDialog(`Scope of ${p.name}`, (close) => {
    const names = h("textarea", { name: "names", rows: "4" });
    names.value = p.names.join("\n");
    const ttl = h("input", { type: "number", name: "maxTtlSeconds", min: "60", value: String(p.maxTtlSeconds) });
    const status = h("div");
    const form = h(
      "form",
      {
        onsubmit: async (/** @type {SubmitEvent} */ event) => {
          event.preventDefault();
          const data = new FormData(form);
          try {
            await patch(`/v1/provisioners/${encodeURIComponent(p.name)}`, {
              names: linesOf(names.value),
              profiles: data.getAll("profiles").map(String),
              maxTtlSeconds: Number(ttl.value),
            });
            await reload();
            close(true);
          } catch (error) {
            clear(status).append(message(`Not changed: ${error.message}`));
          }
        },
      },
      labelled("Names it may enrol", names, NAME_HINT),
      profileBoxes(p.profiles, "edit"),
      labelled("Maximum lifetime (seconds)", ttl),
      status,
      h(
        "div",
        { class: "actions" },
        button("Cancel", () => close(false)),
        h("button", { type: "submit", class: "primary" }, "Save"),
      ),
    );
    return form;
  });
}

/** @param {Provisioner} p @param {() => unknown} reload */
async function toggle(p, reload) {
  if (!p.disabled) {
    const ok = await confirmDialog(`Disable ${p.name}?`, h("p", {}, "Its token stops working at once; certificates it enrolled stay valid."), "Disable", true);
    if (!ok) return;
  }
  try {
    await patch(`/v1/provisioners/${encodeURIComponent(p.name)}`, { disabled: !p.disabled });
  } catch (error) {
    document.getElementById("provisioners")?.prepend(message(error.message));
    return;
  }
  await reload();
}

/** @param {Provisioner} p @param {() => unknown} reload */
async function remove(p, reload) {
  const ok = await confirmDialog(`Remove ${p.name}?`, h("p", {}, "Its token stops working and it cannot be brought back; certificates it enrolled stay valid."), "Remove", true);
  if (!ok) return;
  try {
    await del(`/v1/provisioners/${encodeURIComponent(p.name)}`);
  } catch (error) {
    document.getElementById("provisioners")?.prepend(message(error.message));
    return;
  }
  await reload();
}
