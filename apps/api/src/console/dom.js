// DOM helpers. Every piece of data reaches the page as a text node (never as markup), and
// control and bidirectional-override characters are shown as visible \u{…} escapes, so a
// SAN, CN, provisioner name or audit detail chosen by an attacker renders as inert text
// and cannot reorder what surrounds it.

// C0/C1 controls, bidi embeddings/overrides/isolates, zero-width and line/paragraph separators.
const INVISIBLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

/**
 * The text as it should be shown: invisible or reordering characters made visible.
 * @param {unknown} value
 */
export function visible(value) {
  const text = value === null || value === undefined ? "" : String(value);
  return text.replace(INVISIBLE, (c) => `\\u{${/** @type {number} */ (c.codePointAt(0)).toString(16).padStart(4, "0")}}`);
}

/**
 * Builds an element. `attrs` keys are attributes, except `on*` (listeners), `class`
 * and `text`. Children are nodes or strings (strings become text nodes).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, unknown>} [attrs]
 * @param {...unknown} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), /** @type {EventListener} */ (value));
    else if (key === "text") el.textContent = visible(value);
    else if (key === "class") el.className = String(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

/**
 * Appends `children` (nested arrays flattened; null, undefined and false skipped) as nodes,
 * strings as text nodes.
 * @template {Element} E
 * @param {E} parent
 * @param {unknown[]} children
 * @returns {E}
 */
export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(visible(child)));
  }
  return parent;
}

/**
 * @template {Element} E
 * @param {E} el
 * @returns {E}
 */
export function clear(el) {
  el.replaceChildren();
  return el;
}

/** @param {string} href @param {unknown} text @param {Record<string, unknown>} [attrs] */
export const link = (href, text, attrs = {}) => h("a", { href, ...attrs }, text);

/** @param {string} status */
export function badge(status) {
  return h("span", { class: `badge badge-${String(status).replace(/[^a-z-]/g, "")}` }, status);
}

/**
 * An instant as the console shows every time: UTC, ISO 8601, 24-hour ("2026-12-08T01:22:33Z").
 * @param {string | null | undefined} iso
 */
export function dateTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return visible(iso);
  return isoUtc(d);
}

/** @param {string | null | undefined} iso */
export function timeEl(iso) {
  return h("time", { datetime: iso ?? undefined }, dateTime(iso));
}

/**
 * "3 d 4 h", "12 min", "expired 2 h ago".
 * @param {string} iso
 * @param {number} [now]
 */
export function relative(iso, now = Date.now()) {
  if (!iso) return "—";
  const ms = new Date(iso).getTime() - now;
  const text = duration(Math.abs(ms) / 1000);
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

/** @param {number} totalSeconds */
export function duration(totalSeconds) {
  const s = Math.floor(totalSeconds);
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d} d ${hh} h`;
  if (hh > 0) return `${hh} h ${mm} min`;
  if (mm > 0) return `${mm} min ${s % 60} s`;
  return `${s % 60} s`;
}

/**
 * A table with a caption, the given column titles and rows (arrays of cells).
 * @param {string} caption
 * @param {string[]} headers
 * @param {unknown[][]} rows
 * @param {string} [empty] what is shown instead of an empty table
 */
export function table(caption, headers, rows, empty = "Nothing to show.") {
  if (rows.length === 0) return h("p", { class: "empty" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("caption", {}, caption),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          headers.map((t) => h("th", { scope: "col" }, t)),
        ),
      ),
      h(
        "tbody",
        {},
        rows.map((cells) =>
          h(
            "tr",
            {},
            cells.map((c) => h("td", {}, c)),
          ),
        ),
      ),
    ),
  );
}

/**
 * A definition list from [term, value] pairs.
 * @param {unknown[][]} pairs [term, value]
 */
export function facts(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
  );
}

/**
 * A form field: `control` with its label and an optional hint it is described by.
 * @param {string} labelText
 * @param {HTMLElement} control
 * @param {string} [hint]
 */
export function labelled(labelText, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  const hintEl = hint ? h("span", { class: "hint", id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: "field" }, h("label", { for: id }, labelText), control, hintEl);
}

/** @param {unknown} text @param {(event: MouseEvent) => unknown} onclick @param {Record<string, unknown>} [attrs] */
export function button(text, onclick, attrs = {}) {
  return h("button", { type: "button", onclick, ...attrs }, text);
}

/**
 * A button that puts `text` on the clipboard and says whether that worked.
 * @param {string} text
 * @param {string} label
 * @param {Record<string, unknown>} [attrs]
 */
export function copyButton(text, label, attrs = {}) {
  const b = button(
    label,
    async () => {
      try {
        await navigator.clipboard.writeText(text);
        b.textContent = "Copied";
      } catch {
        b.textContent = "Copy failed: select the text and copy it";
      }
      setTimeout(() => {
        b.textContent = label;
      }, 3000);
    },
    attrs,
  );
  return b;
}

/**
 * An alert area: role=alert for errors, role=status for progress.
 * @param {unknown} text
 * @param {"error" | "warning" | "status"} [kind]
 */
export function message(text, kind = "error") {
  return h("p", { class: `message message-${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

/**
 * A modal dialog (native <dialog>: focus stays inside, Escape closes). `build(close)`
 * returns its content. Focus returns to what had it before. Resolves when closed, with what
 * was given to `close` (undefined after Escape).
 * @template T
 * @param {string} title
 * @param {(close: (value: T) => void) => unknown} build
 * @returns {Promise<T | undefined>}
 */
export function openDialog(title, build) {
  const opener = /** @type {HTMLElement | null} */ (document.activeElement);
  return new Promise((resolve) => {
    const titleId = `dlg-${Math.random().toString(36).slice(2, 9)}`;
    const dialog = h("dialog", { "aria-labelledby": titleId, class: "dialog" });
    /** @type {T | undefined} */
    let result;
    const close = (/** @type {T} */ value) => {
      result = value;
      dialog.close();
    };
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (opener && typeof opener.focus === "function" && opener.isConnected) opener.focus();
      resolve(result);
    });
    append(dialog, [h("h2", { id: titleId }, title), build(close)]);
    document.body.append(dialog);
    dialog.showModal();
    const first = /** @type {HTMLElement | null} */ (dialog.querySelector("[autofocus], input, select, textarea, button"));
    if (first) first.focus();
  });
}

/**
 * A yes/no confirmation; resolves true only when confirmed (false on Cancel, undefined on Escape).
 * @param {string} title @param {unknown} body @param {string} [confirmText] @param {boolean} [danger]
 * @returns {Promise<boolean | undefined>}
 */
export function confirmDialog(title, body, confirmText = "Confirm", danger = false) {
  return openDialog(title, (close) =>
    h(
      "div",
      {},
      h("div", { class: "dialog-body" }, body),
      h(
        "div",
        { class: "actions" },
        button("Cancel", () => close(false), { autofocus: true }),
        button(confirmText, () => close(true), { class: danger ? "danger" : "primary" }),
      ),
    ),
  );
}

/**
 * Saves bytes as a file through a blob: URL (no server round trip, nothing inline).
 * @param {string} filename
 * @param {BlobPart} bytes
 * @param {string} type
 */
export function download(filename, bytes, type) {
  const url = URL.createObjectURL(new Blob([bytes], { type }));
  const a = h("a", { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** @param {string} pem */
export function pemToDer(pem) {
  const b64 = pem.replace(/-----(BEGIN|END) [A-Z ]+-----/g, "").replace(/\s+/g, "");
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

/**
 * A datetime-local value (the operator's local time) as RFC 3339 UTC, or undefined.
 * @param {string} value
 */
export function localToIso(value) {
  if (!value) return undefined;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

// ---------- one time convention: UTC, ISO 8601, 24-hour, in what is shown and what is typed

/** "2026-12-08T01:22:33Z": the form the API answers in, so a time can be copied into a filter. */
export const isoUtc = (/** @type {Date} */ date) => `${date.toISOString().slice(0, 19)}Z`;

/** What a time field accepts: a UTC day, or a UTC instant to the minute or second. */
const UTC_INPUT = /^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2})(:\d{2})?Z)?$/;

/**
 * A typed UTC time as RFC 3339: "" → undefined, anything else that is not a time → null.
 * A bare day means its first second, or with `endOfDay` its last.
 * @param {unknown} text
 * @param {{ endOfDay?: boolean }} [options]
 * @returns {string | null | undefined}
 */
export function parseUtc(text, { endOfDay = false } = {}) {
  const value = String(text ?? "")
    .trim()
    .toUpperCase();
  if (!value) return undefined;
  const m = UTC_INPUT.exec(value);
  if (!m) return null;
  const iso = m[2] ? `${m[1]}T${m[2]}${m[3] ?? ":00"}Z` : `${m[1]}T${endOfDay ? "23:59:59" : "00:00:00"}Z`;
  const d = new Date(iso);
  // Date accepts 2026-02-31 as March 3rd: a typed day must come back as itself.
  return Number.isNaN(d.getTime()) || isoUtc(d) !== iso ? null : iso;
}

/**
 * A labelled text field for a UTC time, showing `iso` in the console's form. A text field,
 * not a date picker: browsers show those in the operator's locale and time zone.
 * @param {string} label @param {string} name @param {string | null | undefined} iso @param {Record<string, unknown>} [attrs]
 */
export function utcField(label, name, iso, attrs = {}) {
  const d = iso ? new Date(iso) : null;
  const input = h("input", {
    type: "text",
    name,
    value: d && !Number.isNaN(d.getTime()) ? isoUtc(d) : "",
    placeholder: "YYYY-MM-DDTHH:MM:SSZ",
    pattern: "\\d{4}-\\d{2}-\\d{2}(T\\d{2}:\\d{2}(:\\d{2})?Z)?",
    inputmode: "numeric",
    autocomplete: "off",
    spellcheck: "false",
    class: "mono utc-input",
    ...attrs,
  });
  return labelled(`${label} (UTC)`, input, "UTC, ISO 8601: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ");
}

/**
 * A long identifier (serial, issuer ID) on one line: its middle hidden behind an ellipsis by
 * CSS (the text stays whole, so it is what is selected, copied, searched and read out),
 * linked when `href` is given, with a button that copies it.
 * @param {string} value
 * @param {string | undefined} href
 * @param {string} [what]
 */
export function shortId(value, href, what = "value") {
  const tail = value.length > 14 ? value.slice(-6) : "";
  const parts = [h("span", { class: "short-id-head" }, tail ? value.slice(0, -6) : value), tail ? h("span", { class: "short-id-tail" }, tail) : null];
  // The name said in full: browsers would otherwise read the two parts as two words.
  const attrs = { class: "mono short-id", title: value, "aria-label": value };
  return h("span", { class: "short-id-cell" }, href ? link(href, parts, attrs) : h("span", attrs, parts), copyValueButton(value, what));
}

/**
 * "Copy", read out as "Copy serial 01a3…": the visible word stays the start of its name.
 * @param {string} value
 * @param {string} what
 */
function copyValueButton(value, what) {
  const word = h("span", {}, "Copy");
  const b = button(
    [word, h("span", { class: "visually-hidden" }, ` ${what} ${value}`)],
    async () => {
      try {
        await navigator.clipboard.writeText(value);
        word.textContent = "Copied";
      } catch {
        word.textContent = "Copy failed";
      }
      setTimeout(() => {
        word.textContent = "Copy";
      }, 3000);
    },
    { class: "copy", title: `Copy the whole ${what}` },
  );
  return b;
}

/**
 * A page's filter form. Its state lives in the URL: on submit, the non-empty fields named in
 * `keys` become the query `onSearch` navigates to, so a reload or the back button shows the
 * same results. Fields in `times` hold UTC times, sent as ISO 8601; one that is not a time
 * is named under the form instead.
 * @param {object} spec
 * @param {string[]} spec.keys the field names carried into the URL, in this order
 * @param {Record<string, {label: string, endOfDay?: boolean}>} [spec.times] UTC time fields: their label, and whether a bare day means its end
 * @param {Node[]} spec.fields the labelled controls
 * @param {string} spec.submit the submit button's text
 * @param {string} spec.clearHref where "Clear" leads: the page without filters
 * @param {(params: URLSearchParams) => void} spec.onSearch
 */
export function filterForm({ keys, times = {}, fields, submit, clearHref, onSearch }) {
  const problem = h("div");
  const form = h(
    "form",
    {
      class: "filters",
      role: "search",
      onsubmit: (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        const data = new FormData(form);
        const next = new URLSearchParams();
        for (const key of keys) {
          /** @type {string | null | undefined} */
          let v = String(data.get(key) ?? "").trim();
          const time = times[key];
          if (time) v = parseUtc(v, { endOfDay: time.endOfDay ?? false });
          if (v === null) {
            clear(problem).append(message(`${time?.label}: not a UTC time; type YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ`));
            return;
          }
          if (v) next.set(key, v);
        }
        onSearch(next);
      },
    },
    fields,
    problem,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, submit), link(clearHref, "Clear", { class: "button" })),
  );
  return form;
}

/**
 * A labelled checkbox kept in the URL as `param=1`, like a filter: toggling it replaces the
 * current history entry with the page's address with or without it.
 * @param {object} spec
 * @param {string} spec.id the checkbox's id
 * @param {string} spec.label
 * @param {URLSearchParams} spec.params the page's current query
 * @param {string} spec.param
 * @param {(params: URLSearchParams) => void} spec.onChange navigates to the new query
 */
export function urlCheckbox({ id, label, params, param, onChange }) {
  const box = h("input", {
    type: "checkbox",
    id,
    checked: params.get(param) === "1",
    onchange: () => {
      const next = new URLSearchParams(params);
      if (box.checked) next.set(param, "1");
      else next.delete(param);
      onChange(next);
    },
  });
  return h("label", { class: "check", for: id }, box, ` ${label}`);
}
