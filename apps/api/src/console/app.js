// The console's shell: session, hash routing (each page's state lives in the URL, so a
// reload or the back button shows the same thing), navigation and logout.
import { ApiError, del, get, post, setCsrf, setSessionEndedHandler } from "./api.js";
import { clear, h, labelled, message } from "./dom.js";
import { issuersPage } from "./issuers.js";
import { crlsPage, healthPage, operatorsPage, schedulerPage } from "./operations.js";
import { auditPage, certificatePage, certificatesPage, overviewPage } from "./pages.js";
import { provisionersPage } from "./provisioners.js";

/**
 * What a page gets besides its container and route.
 * @typedef {object} PageContext
 * @property {(page: string, params?: URLSearchParams, options?: { replace?: boolean }) => void} navigate
 * @property {() => Promise<void>} rerender
 * @property {() => boolean} isCurrent false once the operator has moved to another page
 * @property {string} operator
 */
/**
 * Renders a page into `container`; may return a cleanup (timers) to run before the next page.
 * @typedef {(container: HTMLElement, route: Route, ctx: PageContext) => Promise<(() => void) | void>} Page
 * @typedef {{ page: string, rest: string[], params: URLSearchParams }} Route
 */

// index.html has these: the console cannot start without them.
const main = /** @type {HTMLElement} */ (document.getElementById("main"));
const top = /** @type {HTMLElement} */ (document.getElementById("top"));
const who = /** @type {HTMLElement} */ (document.getElementById("who"));

const pages = new Map(
  /** @type {[string, Page][]} */ ([
    ["overview", overviewPage],
    ["certificates", certificatesPage],
    ["certificate", certificatePage],
    ["issuers", issuersPage],
    ["provisioners", provisionersPage],
    ["audit", auditPage],
    ["scheduler", schedulerPage],
    ["crls", crlsPage],
    ["health", healthPage],
    ["operators", operatorsPage],
  ]),
);

/** @type {{ operator: string, csrfToken: string } | null} */
let session = null;
/** @type {string | null} */
let loginNotice = null;
// Each page may return a cleanup (timers); run it before the next page renders.
/** @type {(() => void) | null} */
let cleanup = null;
let renderCount = 0;

/**
 * The current route: page name, path segments after it, and the query.
 * @returns {Route}
 */
export function currentRoute() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [pathPart = "", queryPart = ""] = raw.split("?", 2);
  const [page = "", ...rest] = pathPart.split("/").map((s) => decodeURIComponent(s));
  return { page, rest, params: new URLSearchParams(queryPart) };
}

/**
 * Changes the URL (a new history entry unless `replace`) and renders it.
 * @param {string} page
 * @param {URLSearchParams} [params]
 * @param {{ replace?: boolean }} [options]
 * @returns {Promise<void> | undefined}
 */
export function navigate(page, params = new URLSearchParams(), { replace = false } = {}) {
  const q = params.toString();
  const hash = `#/${page}${q ? `?${q}` : ""}`;
  if (location.hash === hash) return render();
  if (replace) {
    history.replaceState(null, "", hash);
    render();
  } else location.hash = hash;
}

/** @returns {Promise<void>} */
async function render() {
  const count = ++renderCount;
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  if (!session) return showLogin();
  const route = currentRoute();
  const page = pages.get(route.page);
  if (!page) return navigate("overview", undefined, { replace: true });
  for (const a of /** @type {NodeListOf<HTMLAnchorElement>} */ (document.querySelectorAll("#nav a"))) {
    const current = a.dataset.page === route.page || (route.page === "certificate" && a.dataset.page === "certificates");
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  top.hidden = false;
  clear(main);
  const container = h("div", { class: "page" });
  main.append(container);
  try {
    const result = await page(container, route, { navigate, rerender: render, isCurrent: () => count === renderCount, operator: session.operator });
    if (count === renderCount && typeof result === "function") cleanup = result;
    else if (typeof result === "function") result();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;
    if (count === renderCount) container.append(message(`Could not load this page: ${error.message}`));
  }
  const heading = container.querySelector("h1");
  if (heading && count === renderCount && document.activeElement === document.body) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
}

function showLogin() {
  top.hidden = true;
  document.title = "Log in · PKI operator console";
  const token = h("input", { type: "password", name: "token", autocomplete: "current-password", required: true, spellcheck: "false" });
  const status = h("div", { id: "login-status" });
  if (loginNotice) status.append(message(loginNotice, "warning"));
  const submit = h("button", { type: "submit", class: "primary" }, "Log in");
  const form = h(
    "form",
    {
      class: "login",
      onsubmit: async (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        submit.disabled = true;
        clear(status);
        try {
          startSession(await post("/v1/console/session", { token: token.value.trim() }));
          loginNotice = null;
          token.value = "";
          render();
        } catch (error) {
          const text = error.status === 401 ? "That is not an admin token." : error.status === 429 ? `Too many failed attempts: ${error.message}` : error.message;
          status.append(message(text));
          submit.disabled = false;
          token.focus();
        }
      },
    },
    h("h1", {}, "PKI operator console"),
    h("p", {}, "Log in with your admin token (", h("code", {}, "pki admin add NAME"), " makes one; the bootstrap token is in .pki/admin.token)."),
    labelled("Admin token", token),
    status,
    h("div", { class: "actions" }, submit),
  );
  clear(main).append(form);
  token.focus();
}

/** @param {{ operator: string, csrfToken: string }} body the session the API answered with */
function startSession(body) {
  session = body;
  setCsrf(body.csrfToken);
  who.textContent = `${body.operator}`;
}

/** @param {string} notice why the login page is shown */
function endSession(notice) {
  session = null;
  setCsrf(null);
  loginNotice = notice;
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  for (const dialog of document.querySelectorAll("dialog")) dialog.close();
  showLogin();
}

setSessionEndedHandler((detail) => {
  if (session) endSession(`Your session has ended (${detail}). Log in again.`);
});

/** @type {HTMLElement} */ (document.getElementById("logout")).addEventListener("click", async () => {
  try {
    await del("/v1/console/session");
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) {
      main.prepend(message(`Logging out failed: ${error.message}`));
      return;
    }
  }
  endSession("You have logged out.");
});

window.addEventListener("hashchange", () => render());

async function start() {
  try {
    startSession(await get("/v1/console/session", { quiet401: true }));
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) loginNotice = `Could not check the session: ${error.message}`;
  }
  render();
}

start();
