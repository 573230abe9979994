// Operator dashboard: reads /dashboard/api/summary with the admin token and draws it.
// Plain DOM code and textContent only (no innerHTML), so nothing from the inventory can
// inject markup.
const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElementNS(tag === "svg" || attrs.svg ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml", tag);
  for (const [k, v] of Object.entries(attrs)) if (k !== "svg") node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node;
};

async function load() {
  const token = sessionStorage.getItem("pki-admin-token");
  if (!token) return showLogin();
  const res = await fetch("/dashboard/api/summary", { headers: { authorization: `Bearer ${token}` } });
  if (res.status === 401 || res.status === 403 || res.status === 429) {
    sessionStorage.removeItem("pki-admin-token");
    if (res.status === 429) return showLogin(`That token is not an admin token, and this address has sent too many; wait ${res.headers.get("retry-after") ?? 60} s.`);
    return showLogin("That token is not an admin token.");
  }
  if (!res.ok) return showLogin(`The CA answered ${res.status}.`);
  render(await res.json());
}

function showLogin(message = "") {
  $("login").hidden = false;
  $("content").hidden = true;
  $("error").textContent = message;
}

function render(data) {
  $("login").hidden = true;
  $("content").hidden = false;
  $("generated").textContent = `as of ${data.generatedAt}`;

  const issuers = $("issuers");
  issuers.replaceChildren();
  const children = (parentId) => data.issuers.filter((i) => i.parentId === parentId);
  const item = (issuer) => {
    const li = el(
      "li",
      { "data-issuer": issuer.id },
      el("span", { class: `badge ${issuer.status}` }, issuer.status),
      `${issuer.subject} — ${issuer.role}, ${issuer.keyAlgorithm}, until ${issuer.notAfter.slice(0, 10)}`,
    );
    const sub = children(issuer.id);
    if (sub.length) li.append(el("ul", {}, ...sub.map(item)));
    return li;
  };
  for (const root of children(null)) issuers.append(item(root));

  const counts = $("counts");
  counts.replaceChildren(...Object.entries(data.counts).map(([state, n]) => el("div", { "data-state": state }, el("dt", {}, state), el("dd", {}, String(n)))));

  const svg = $("timeline");
  svg.replaceChildren();
  const days = Array.from({ length: 30 }, (_, i) => new Date(Date.parse(data.generatedAt) + i * 86400000).toISOString().slice(0, 10));
  const byDay = new Map(data.expiry.map((d) => [d.day, d.count]));
  const max = Math.max(1, ...byDay.values());
  svg.setAttribute("viewBox", "0 0 600 140");
  days.forEach((day, i) => {
    const n = byDay.get(day) ?? 0;
    const h = Math.round((n / max) * 100);
    const bar = el("rect", { svg: true, x: String(i * 20 + 2), y: String(110 - h), width: "16", height: String(h), "data-day": day, "data-count": String(n) });
    bar.append(el("title", { svg: true }, `${day}: ${n}`));
    svg.append(bar);
    if (i % 5 === 0) svg.append(el("text", { svg: true, x: String(i * 20), y: "128" }, day.slice(5)));
  });

  const tbody = $("audit").tBodies[0];
  tbody.replaceChildren(
    ...data.audit.map((a) => el("tr", {}, el("td", {}, a.at.replace("T", " ").slice(0, 19)), el("td", {}, a.actor), el("td", {}, a.action), el("td", {}, a.target ?? ""), el("td", {}, a.outcome))),
  );
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("pki-admin-token", $("token").value);
  load();
});
load();
