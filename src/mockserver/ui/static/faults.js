// The Faults and clock page: the fault rules (GET/POST/DELETE /_mock/faults) with what is left
// of each, and the mock's clock (GET/PUT/DELETE /_mock/clock).

import {
  act, control, el, fillAccountSelect, formatTime, fromLocalInput, poll, toLocalInput,
} from "./common.js";

const rows = document.getElementById("fault-rows");
const form = document.getElementById("add-fault");
let shown = null;

function outcomeOf(fault) {
  const counted = fault.countsUsage ? " (image counted)" : "";
  if (fault.drop) return `drop the connection${counted}`;
  if (fault.status !== null) return `answer ${fault.status}${counted}`;
  return "delay only";
}

// countsUsage goes with a 500 or a drop only (the control API refuses it otherwise).
const countsUsage = document.getElementById("fault-counts-usage");
function offerCountsUsage() {
  const outcome = form.outcome.value;
  countsUsage.disabled = outcome !== "500" && outcome !== "drop";
  if (countsUsage.disabled) countsUsage.checked = false;
}
form.outcome.addEventListener("change", offerCountsUsage);
offerCountsUsage();

function renderFaults(faults, refreshNow) {
  const focusedRow = document.activeElement && document.activeElement.dataset.key;
  rows.replaceChildren(
    ...faults.map((fault) => {
      const remove = el("button", {
        type: "button",
        class: "link danger",
        "data-key": fault.id,
        "aria-label": `Delete the rule ${outcomeOf(fault)}`,
        text: "Delete",
      });
      remove.addEventListener("click", async () => {
        await act(remove, () => control("DELETE", `/faults/${encodeURIComponent(fault.id)}`), "Rule deleted.");
        refreshNow();
      });
      return el(
        "tr",
        { "data-fault": fault.id },
        el("td", { "data-label": "Outcome" }, el("span", { class: `badge ${fault.drop ? "dropped" : fault.status === null ? "ok" : "server"}`, text: outcomeOf(fault) })),
        el("td", { "data-label": "Message", text: fault.error || (fault.status !== null ? "the live message" : "–") }),
        el("td", { "data-label": "Delay", class: "nowrap", text: fault.delayMs ? `${fault.delayMs} ms` : "–" }),
        el("td", { "data-label": "Left", class: "left", text: fault.times === null ? "until deleted" : String(fault.times) }),
        el("td", { "data-label": "Account", text: fault.account || "all" }),
        el("td", { class: "actions" }, remove),
      );
    }),
  );
  document.getElementById("faults-empty").hidden = faults.length > 0;
  if (focusedRow) {
    const again = rows.querySelector(`[data-key="${CSS.escape(focusedRow)}"]`);
    if (again) again.focus();
  }
}

function renderClock(clock) {
  document.getElementById("clock-now").textContent = `${formatTime(clock.now)} UTC`;
  const state = document.getElementById("clock-state");
  state.textContent = clock.frozen ? "frozen" : "real time";
  state.className = `badge ${clock.frozen ? "frozen" : "ok"}`;
  document.getElementById("unfreeze").disabled = !clock.frozen;
  const input = document.getElementById("freeze-at");
  if (!input.value && document.activeElement !== input) input.value = toLocalInput(clock.now);
}

async function refresh() {
  const [faults, clock, accounts] = await Promise.all([
    control("GET", "/faults"), control("GET", "/clock"), control("GET", "/accounts"),
  ]);
  renderClock(clock);
  fillAccountSelect(document.getElementById("fault-account"), accounts);
  const text = JSON.stringify(faults);
  if (text !== shown) {
    renderFaults(faults, refreshNow);
    shown = text;
  }
}

const refreshNow = poll(refresh, 1000);

function faultBody() {
  const outcome = form.outcome.value;
  const body = {};
  if (outcome === "drop") body.drop = true;
  else if (outcome !== "delay") body.status = Number(outcome);
  if (form.error.value.trim()) body.error = form.error.value.trim();
  if (form.delayMs.value !== "" && Number(form.delayMs.value) !== 0) body.delayMs = Number(form.delayMs.value);
  if (form.times.value !== "") body.times = Number(form.times.value);
  if (form.account.value) body.account = form.account.value;
  if (countsUsage.checked) body.countsUsage = true;
  return body;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = faultBody();
  await act(event.submitter, () => control("POST", "/faults", body), (fault) => `Armed: ${outcomeOf(fault)}${fault.times === null ? " until deleted" : `, ${fault.times} time${fault.times === 1 ? "" : "s"}`}.`);
  refreshNow();
});
document.getElementById("clear-faults").addEventListener("click", async (event) => {
  await act(event.currentTarget, () => control("DELETE", "/faults"), "Every rule deleted.");
  refreshNow();
});
document.getElementById("freeze").addEventListener("submit", async (event) => {
  event.preventDefault();
  const now = fromLocalInput(document.getElementById("freeze-at").value);
  await act(event.submitter, () => control("PUT", "/clock", { now }), (clock) => `The clock is frozen at ${formatTime(clock.now)} UTC.`);
  refreshNow();
});
document.getElementById("freeze-now").addEventListener("click", async (event) => {
  const clock = await control("GET", "/clock").catch(() => null);
  const now = clock ? clock.now : new Date().toISOString();
  await act(event.currentTarget, () => control("PUT", "/clock", { now }), (frozen) => `The clock is frozen at ${formatTime(frozen.now)} UTC.`);
  refreshNow();
});
document.getElementById("unfreeze").addEventListener("click", async (event) => {
  await act(event.currentTarget, () => control("DELETE", "/clock"), "The clock follows real time again.");
  document.getElementById("freeze-at").value = "";
  refreshNow();
});
