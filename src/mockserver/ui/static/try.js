// The Try it page: a real multipart upload to the public OCR endpoint (not the control API),
// with a demo token chosen from GET /_mock/health, and the answer as the client would get it.

import { OCR_URL, control, el, notify, onAdminToken } from "./common.js";

const form = document.getElementById("try");
const select = document.getElementById("try-token");
const other = document.getElementById("other-token");

async function loadTokens() {
  try {
    const health = await control("GET", "/health");
    select.replaceChildren(
      ...health.demoAccounts.map((demo) => el("option", { value: demo.token, text: `${demo.plan} demo (${demo.id})` })),
      el("option", { value: "", text: "another token…" }),
    );
  } catch (failure) {
    select.replaceChildren(el("option", { value: "", text: "another token…" }));
    if (failure.status !== 401) notify(failure.message, "error");
  }
  showOther();
}

function showOther() {
  const needed = select.value === "";
  document.getElementById("other-token-label").hidden = !needed;
  other.required = needed;
}

select.addEventListener("change", showOther);
onAdminToken(loadTokens);
loadTokens();

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = event.submitter;
  const token = select.value || other.value.trim();
  const data = new FormData();
  data.append("file", form.file.files[0]);
  if (form.prompt.value) data.append("prompt", form.prompt.value);
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  button.disabled = true;
  const started = performance.now();
  try {
    const response = await fetch(OCR_URL, { method: "POST", headers, body: data, cache: "no-store" });
    const text = await response.text();
    let shown = text;
    try {
      shown = JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      // not JSON: shown as it came
    }
    const took = Math.round(performance.now() - started);
    const badge = document.getElementById("answer-status");
    badge.textContent = `${response.status} ${response.ok ? "OK" : "error"} · ${took} ms`;
    badge.className = `badge ${response.ok ? "ok" : response.status >= 500 ? "server" : "client"}`;
    document.getElementById("answer-body").textContent = shown;
    document.getElementById("answer").hidden = false;
    notify(`The OCR endpoint answered ${response.status}.`);
  } catch (failure) {
    notify(`The request failed without an answer (${failure.message}): a dropped connection?`, "error");
  } finally {
    button.disabled = false;
  }
});
