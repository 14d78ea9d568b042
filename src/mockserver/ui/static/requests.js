// The Requests page: the journal (GET /_mock/requests), newest first, refreshed every second,
// and the plot of the last hour. Filters are the API's own ?account= and ?status=.

import {
  act, control, el, fillAccountSelect, formatBytes, formatTime, notify, poll, statusClass,
} from "./common.js";
import { renderPlot } from "./plot.js";

const SHOWN = 200; // rows in the table: the newest ones
const FIELDS = [
  "time", "method", "path", "status", "account", "tokenPrefix", "fileName", "mimeType",
  "fileSize", "sha256", "fixture", "prompt", "error", "hint", "durationMs",
];

const rows = document.getElementById("journal-rows");
const accountFilter = document.getElementById("filter-account");
const statusFilter = document.getElementById("filter-status");
const live = document.getElementById("live");
const expanded = new Set();
let shownText = null;
let lastPlot = 0;
let plotEvery = 3000;
let accountsFetched = 0;

function query(extra = {}) {
  const params = new URLSearchParams(extra);
  if (accountFilter.value) params.set("account", accountFilter.value);
  return params.toString();
}

function entryKey(entry, seen) {
  const base = [entry.time, entry.status, entry.durationMs, entry.sha256, entry.tokenPrefix].join("|");
  const n = (seen.get(base) || 0) + 1;
  seen.set(base, n);
  return `${base}#${n}`;
}

function detailsOf(entry, id) {
  const list = el("dl", { class: "fields" });
  for (const name of FIELDS) {
    const value = entry[name];
    list.append(
      el("dt", { text: name }),
      el("dd", { class: name === "hint" && value ? "hint" : null, text: value === null ? "null" : String(value) }),
    );
  }
  const hint = entry.hint
    ? el("p", { class: "hint-callout" }, el("strong", { text: "Hint: " }), entry.hint)
    : null;
  const error = entry.error ? el("p", { class: "error-text", text: `Answered: ${entry.error}` }) : null;
  return el("tr", { class: "details", id }, el("td", { colspan: 8 }, hint, error, list));
}

function rowOf(entry, key, index) {
  const id = `entry-${index}`;
  const open = expanded.has(key);
  const toggle = el("button", {
    type: "button",
    class: "expand",
    "aria-expanded": String(open),
    "aria-controls": id,
    "aria-label": `Details of the ${entry.status} at ${formatTime(entry.time, true)}`,
    "data-key": key,
    text: open ? "▾" : "▸",
  });
  toggle.addEventListener("click", () => {
    if (expanded.has(key)) expanded.delete(key);
    else expanded.add(key);
    const nowOpen = expanded.has(key);
    toggle.setAttribute("aria-expanded", String(nowOpen));
    toggle.textContent = nowOpen ? "▾" : "▸";
    document.getElementById(id).hidden = !nowOpen;
  });
  const status = el("span", { class: `badge status ${statusClass(entry.status)}`, text: entry.status === 0 ? "dropped" : String(entry.status) });
  const hintMark = entry.hint ? el("span", { class: "badge hint-mark", title: entry.hint, text: "hint" }) : null;
  const row = el(
    "tr",
    { class: `entry ${entry.hint ? "has-hint" : ""}`, "data-status": entry.status },
    el("td", {}, toggle),
    el("td", { class: "nowrap" }, el("span", { class: "date", text: `${formatTime(entry.time, true).slice(0, 11)}` }), formatTime(entry.time, true).slice(11)),
    el("td", {}, status, hintMark),
    el("td", { text: entry.account || "–" }),
    el("td", { class: "wide mono", text: entry.tokenPrefix || "–" }),
    el("td", { class: "file", text: entry.fileName ? `${entry.fileName} (${entry.mimeType || "no type"})` : "–" }),
    el("td", { class: "wide nowrap", text: formatBytes(entry.fileSize) }),
    el("td", { class: "wide", text: entry.durationMs === null ? "–" : entry.durationMs.toFixed(1) }),
  );
  row.addEventListener("click", (event) => {
    if (!event.target.closest("button") && !window.getSelection().toString()) toggle.click();
  });
  const details = detailsOf(entry, id);
  details.hidden = !open;
  return [row, details];
}

function renderJournal(entries) {
  const focused = document.activeElement && document.activeElement.dataset.key;
  const seen = new Map();
  const newest = entries.slice().reverse();
  const built = newest.flatMap((entry, i) => rowOf(entry, entryKey(entry, seen), i));
  rows.replaceChildren(...built);
  if (focused) {
    const again = rows.querySelector(`button[data-key="${CSS.escape(focused)}"]`);
    if (again) again.focus();
  }
  document.getElementById("journal-empty").hidden = entries.length > 0;
  const filtered = accountFilter.value || statusFilter.value ? " matching" : "";
  document.getElementById("journal-count").textContent = entries.length >= SHOWN
    ? `(the newest ${SHOWN}${filtered})`
    : `(${entries.length}${filtered})`;
}

let plotted = null; // [entries, now] last drawn, to draw again at a new width

function drawPlot() {
  if (plotted) renderPlot(document.getElementById("plot"), document.getElementById("plot-legend"), ...plotted);
}

async function refreshPlot() {
  const [clock, entries] = await Promise.all([control("GET", "/clock"), control("GET", `/requests?${query()}`)]);
  plotted = [entries, clock.now];
  drawPlot();
  // A long journal costs the mock a moment to serialise: look at it less often then.
  plotEvery = entries.length > 2000 ? 15000 : 3000;
  lastPlot = Date.now();
}

async function refresh(force = false) {
  if (!live.checked && !force) return;
  if (Date.now() - accountsFetched > 10000) {
    fillAccountSelect(accountFilter, await control("GET", "/accounts"));
    accountsFetched = Date.now();
  }
  const extra = { limit: SHOWN };
  if (statusFilter.value) extra.status = statusFilter.value;
  const entries = await control("GET", `/requests?${query(extra)}`);
  const text = JSON.stringify(entries);
  const changed = text !== shownText;
  if (changed) {
    renderJournal(entries);
    shownText = text;
  }
  if (force || (changed && Date.now() - lastPlot > 1000) || Date.now() - lastPlot > plotEvery) {
    await refreshPlot();
  }
}

const refreshNow = poll(() => refresh(), 1000);
let resizing = null;
window.addEventListener("resize", () => {
  clearTimeout(resizing);
  resizing = setTimeout(drawPlot, 150);
});
for (const filter of [accountFilter, statusFilter]) {
  filter.addEventListener("change", () => {
    shownText = null;
    refresh(true).catch((failure) => notify(failure.message, "error"));
  });
}
live.addEventListener("change", () => {
  notify(live.checked ? "Live updates on." : "Live updates paused.");
  if (live.checked) refreshNow();
});
document.getElementById("clear-journal").addEventListener("click", async (event) => {
  if (!window.confirm("Forget every request in the journal?")) return;
  await act(event.currentTarget, () => control("DELETE", "/requests"), "The journal is empty.");
  expanded.clear();
  refresh(true).catch((failure) => notify(failure.message, "error"));
});
