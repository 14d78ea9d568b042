// Shared by every page: the control API client (with the admin token), feedback, polling,
// formatting. The page holds no state of its own: it shows what the control API answers.

const TOKEN_KEY = "itsocr-mock.admin-token";
const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;
export const CONTROL_URL = meta("itsocr-mock-control");
export const OCR_URL = meta("itsocr-mock-ocr");

export class ControlError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// -- the admin token: asked for on a 401, kept in this tab only, sent as a Bearer header --

const tokenListeners = [];
let waitingForToken = false;

/** Run `listener` whenever a new admin token has been entered (to load the page again). */
export function onAdminToken(listener) {
  tokenListeners.push(listener);
}

function adminToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function askForToken(message) {
  waitingForToken = true;
  const panel = document.getElementById("admin-token");
  const wasHidden = panel.hidden;
  panel.hidden = false;
  document.getElementById("admin-token-error").textContent = message;
  if (wasHidden) document.getElementById("admin-token-input").focus();
}

function setUpTokenForm() {
  const form = document.getElementById("admin-token-form");
  const forget = document.getElementById("forget-token");
  forget.hidden = !adminToken();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("admin-token-input");
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    input.value = "";
    document.getElementById("admin-token-error").textContent = "";
    document.getElementById("admin-token").hidden = true;
    forget.hidden = false;
    waitingForToken = false;
    tokenListeners.forEach((listener) => listener());
  });
  forget.addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    forget.hidden = true;
    notify("The admin token is forgotten in this tab.");
    tokenListeners.forEach((listener) => listener());
  });
}

/** True while the page waits for an admin token (polling pauses meanwhile). */
export function waitingForAdminToken() {
  return waitingForToken;
}

/**
 * One control API call: `path` under /_mock, a JSON `body` for writes. Resolves to the
 * decoded answer (null for 204); rejects with a ControlError carrying the API's message.
 */
export async function control(method, path, body) {
  const headers = { Accept: "application/json" };
  const token = adminToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { method, headers, cache: "no-store", credentials: "same-origin" };
  // Every write says it is JSON, bodiless ones too: a control API may refuse any other
  // state-changing request (a cross-site form post cannot send this type).
  if (method !== "GET") headers["Content-Type"] = "application/json";
  if (body !== undefined) init.body = JSON.stringify(body);
  let response;
  try {
    response = await fetch(CONTROL_URL + path, init);
  } catch (failure) {
    throw new ControlError(0, `The mock did not answer (${failure.message}): is it still running?`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (response.ok) return data;
  const message = (data && data.error) || `${response.status} ${response.statusText}`;
  if (response.status === 401) askForToken(message);
  throw new ControlError(response.status, message);
}

// -- feedback ----------------------------------------------------------------------------

/** Show a message for a while: `kind` "ok" (default) or "error" (stays until dismissed). */
export function notify(message, kind = "ok") {
  const box = document.getElementById("toasts");
  const toast = document.createElement("div");
  toast.className = `toast ${kind}`;
  toast.setAttribute("role", kind === "error" ? "alert" : "status");
  const text = document.createElement("span");
  text.textContent = message;
  const close = document.createElement("button");
  close.type = "button";
  close.className = "link";
  close.textContent = "Dismiss";
  close.setAttribute("aria-label", `Dismiss: ${message}`);
  close.addEventListener("click", () => toast.remove());
  toast.append(text, close);
  box.append(toast);
  while (box.children.length > 4) box.firstElementChild.remove();
  if (kind !== "error") setTimeout(() => toast.remove(), 6000);
}

/**
 * Run an action from a button or form: disables `trigger` meanwhile, says `done` (a string or
 * a function of the result) on success and the API's message on failure.
 */
export async function act(trigger, action, done) {
  if (trigger) trigger.disabled = true;
  try {
    const result = await action();
    const message = typeof done === "function" ? done(result) : done;
    if (message) notify(message);
    return result;
  } catch (failure) {
    if (!(failure instanceof ControlError && failure.status === 401)) {
      notify(failure.message, "error");
    }
    return undefined;
  } finally {
    if (trigger) trigger.disabled = false;
  }
}

/**
 * Call `refresh` now and then every `intervalMs` after it finishes, while no admin token is
 * awaited. Returns a function that refreshes at once (after an action).
 */
export function poll(refresh, intervalMs) {
  let timer = null;
  let running = false;
  let lastError = "";
  async function tick() {
    clearTimeout(timer);
    if (running) return;
    running = true;
    try {
      if (!waitingForAdminToken()) {
        await refresh();
        lastError = "";
      }
    } catch (failure) {
      // Said once, not every second; a 401 already shows the token form.
      const quiet = failure instanceof ControlError && failure.status === 401;
      if (!quiet && failure.message !== lastError) notify(failure.message, "error");
      lastError = failure.message;
    } finally {
      running = false;
      timer = setTimeout(tick, intervalMs);
    }
  }
  onAdminToken(tick);
  tick();
  return tick;
}

// -- formatting -------------------------------------------------------------------------

/** "2030-01-31 23:59:59" from an ISO instant (the page always shows UTC, as the API does). */
export function formatTime(iso, withMillis = false) {
  if (!iso) return "–";
  const text = iso.replace("T", " ").replace("Z", "");
  return withMillis ? text : text.slice(0, 19);
}

/** The value for a datetime-local input, in UTC. */
export function toLocalInput(iso) {
  return iso ? iso.slice(0, 19) : "";
}

/** An ISO instant from a datetime-local input's value, read as UTC. */
export function fromLocalInput(value) {
  if (!value) return null;
  return (value.length === 16 ? `${value}:00` : value) + "Z";
}

export function formatBytes(size) {
  if (size === null || size === undefined) return "–";
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KiB`;
  return `${(size / 1024 / 1024).toFixed(1)} MiB`;
}

/** The CSS class of a status: ok, client, quota, server, dropped. */
export function statusClass(status) {
  if (status === 0) return "dropped";
  if (status === 429) return "quota";
  if (status >= 500) return "server";
  if (status >= 400) return "client";
  return "ok";
}

/** Create an element with text and attributes in one go. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

/** Fill an account <select> with the accounts' ids, keeping the current choice. */
export function fillAccountSelect(select, accounts) {
  const chosen = select.value;
  const first = select.options[0];
  const ids = accounts.map((account) => account.id);
  const current = Array.from(select.options).slice(1).map((option) => option.value);
  if (ids.join("\n") === current.join("\n")) return;
  select.replaceChildren(first, ...ids.map((id) => el("option", { value: id, text: id })));
  if (chosen && !ids.includes(chosen)) select.append(el("option", { value: chosen, text: chosen }));
  select.value = chosen;
}

setUpTokenForm();
