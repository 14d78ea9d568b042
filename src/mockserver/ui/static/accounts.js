// The Accounts page: every account (GET /_mock/accounts) with its usage this month of the
// mock's clock (GET /_mock/accounts/{id}/usage) and its tokens; create, change, revoke.

import { act, control, el, formatBytes, formatTime, fromLocalInput, notify, poll } from "./common.js";

const list = document.getElementById("accounts");
const template = document.getElementById("account-template");
const cards = new Map(); // account id -> {card, shown}
let demoIds = new Set();
let shown = null; // what the cards show, to redraw only on a change

function tokenState(token, now) {
  if (token.revokedAt) return "revoked";
  if (token.expiresAt && Date.parse(token.expiresAt) <= Date.parse(now)) return "expired";
  return "active";
}

function showNewToken(label, token) {
  document.getElementById("new-token-label").textContent = label;
  document.getElementById("new-token-value").textContent = token;
  const box = document.getElementById("new-token");
  box.hidden = false;
  document.getElementById("copy-token").focus();
}

function tokenItem(token, now, refreshNow) {
  const state = tokenState(token, now);
  const item = el(
    "li",
    { class: `token ${state}`, "data-token-id": token.id },
    el("code", { class: "mono", text: `${token.prefix}…` }),
    el("span", { class: `badge state ${state}`, text: state }),
    el("span", {
      class: "muted small",
      text: token.expiresAt ? `expires ${formatTime(token.expiresAt)}` : `since ${formatTime(token.createdAt)}`,
    }),
  );
  if (state === "active") {
    const revoke = el("button", {
      type: "button",
      class: "link danger",
      "data-key": `revoke-${token.id}`,
      "aria-label": `Revoke token ${token.prefix}…`,
      text: "Revoke",
    });
    revoke.addEventListener("click", async () => {
      await act(revoke, () => control("DELETE", `/tokens/${encodeURIComponent(token.id)}`), `Token ${token.prefix}… revoked.`);
      refreshNow();
    });
    item.append(revoke);
  }
  return item;
}

function renderUsage(card, usage) {
  const bar = card.querySelector(".bar");
  const fill = card.querySelector(".fill");
  const text = card.querySelector(".usage-text");
  const used = usage.imagesUsed;
  if (usage.limit === null) {
    bar.classList.add("unlimited");
    bar.removeAttribute("aria-valuemax");
    bar.setAttribute("aria-valuenow", String(used));
    bar.setAttribute("aria-valuetext", `${used} images, unlimited`);
    fill.style.width = "100%";
    text.textContent = `${used} images in ${usage.period} · unlimited · ${formatBytes(usage.bytesProcessed)} processed`;
    return;
  }
  const share = usage.limit ? Math.min(used / usage.limit, 1) : 1;
  bar.classList.remove("unlimited");
  bar.classList.toggle("full", used >= usage.limit);
  bar.classList.toggle("high", used < usage.limit && share >= 0.8);
  bar.setAttribute("aria-valuemax", String(usage.limit));
  bar.setAttribute("aria-valuenow", String(Math.min(used, usage.limit)));
  bar.setAttribute("aria-valuetext", `${used} of ${usage.limit} images`);
  fill.style.width = `${(share * 100).toFixed(1)}%`;
  text.textContent = `${used} of ${usage.limit} images in ${usage.period} · ${formatBytes(usage.bytesProcessed)} processed`;
}

function buildCard(account, refreshNow) {
  const card = template.content.firstElementChild.cloneNode(true);
  card.dataset.account = account.id;
  card.querySelector(".account-id").textContent = account.id;
  card.querySelector(".bar").setAttribute("aria-label", `Images used by ${account.id} this month`);
  const path = `/accounts/${encodeURIComponent(account.id)}`;
  const planForm = card.querySelector(".change-plan");
  planForm.plan.value = account.plan;
  planForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const plan = planForm.plan.value;
    await act(event.submitter, () => control("PATCH", path, { plan }), `${account.id} is now on ${plan}.`);
    refreshNow();
  });
  const usageForm = card.querySelector(".set-usage");
  usageForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const imagesUsed = Number(usageForm.imagesUsed.value);
    const done = await act(event.submitter, () => control("PUT", `${path}/usage`, { imagesUsed }), `${account.id} has used ${imagesUsed} images this month.`);
    if (done) usageForm.reset();
    refreshNow();
  });
  const tokenForm = card.querySelector(".add-token");
  tokenForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { expiresAt: fromLocalInput(tokenForm.expiresAt.value) };
    const created = await act(event.submitter, () => control("POST", `${path}/tokens`, body), null);
    if (created) {
      tokenForm.reset();
      showNewToken(`New token of ${account.id}:`, created.token);
      notify(`Token ${created.prefix}… added to ${account.id}.`);
    }
    refreshNow();
  });
  card.querySelector(".delete-account").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!window.confirm(`Delete ${account.id}? Its tokens will answer 401 User not found.`)) return;
    await act(event.submitter, () => control("DELETE", path), `${account.id} deleted.`);
    refreshNow();
  });
  return card;
}

function updateCard(card, account, usage, now, refreshNow) {
  const badge = card.querySelector(".plan");
  badge.textContent = account.plan;
  badge.className = `badge plan ${account.plan}`;
  card.querySelector(".demo").hidden = !demoIds.has(account.id);
  const planSelect = card.querySelector(".change-plan select");
  if (document.activeElement !== planSelect) planSelect.value = account.plan;
  renderUsage(card, usage);
  const tokens = card.querySelector(".tokens");
  const focused = document.activeElement && document.activeElement.dataset.key;
  tokens.replaceChildren(...account.tokens.map((token) => tokenItem(token, now, refreshNow)));
  if (!account.tokens.length) tokens.append(el("li", { class: "muted", text: "no tokens" }));
  if (focused) {
    const again = tokens.querySelector(`[data-key="${CSS.escape(focused)}"]`);
    if (again) again.focus();
  }
}

async function refresh() {
  const [accounts, clock] = await Promise.all([control("GET", "/accounts"), control("GET", "/clock")]);
  const usages = await Promise.all(
    accounts.map((account) => control("GET", `/accounts/${encodeURIComponent(account.id)}/usage`)),
  );
  const text = JSON.stringify([accounts, usages, clock.frozen ? clock.now : clock.now.slice(0, 16)]);
  if (text === shown) return;
  shown = text;
  document.getElementById("period").textContent = usages.length
    ? `Usage in ${usages[0].period}, the month of the mock's clock (${formatTime(clock.now)} UTC${clock.frozen ? ", frozen" : ""}).`
    : "";
  const ids = new Set(accounts.map((account) => account.id));
  for (const [id, card] of cards) {
    if (!ids.has(id)) {
      card.remove();
      cards.delete(id);
    }
  }
  accounts.forEach((account, i) => {
    let card = cards.get(account.id);
    if (!card) {
      card = buildCard(account, refreshNow);
      cards.set(account.id, card);
    }
    if (list.children[i] !== card) list.insertBefore(card, list.children[i] || null);
    updateCard(card, account, usages[i], clock.now, refreshNow);
  });
  if (!accounts.length) list.replaceChildren(el("p", { class: "muted", text: "No accounts: create one above." }));
}

async function loadDemoIds() {
  const health = await control("GET", "/health");
  demoIds = new Set(health.demoAccounts.map((demo) => demo.id));
}

const refreshNow = poll(async () => {
  if (!demoIds.size) await loadDemoIds();
  await refresh();
}, 2000);

function forceRefresh() {
  shown = null;
  return refreshNow();
}

document.getElementById("create-account").addEventListener("submit", async (event) => {
  event.preventDefault();
  const plan = event.target.plan.value;
  const created = await act(event.submitter, () => control("POST", "/accounts", { plan }), null);
  if (created) {
    showNewToken(`Account ${created.id} (${created.plan}) created. Its token:`, created.token);
    notify(`Account ${created.id} created.`);
  }
  forceRefresh();
});
document.getElementById("copy-token").addEventListener("click", async () => {
  const value = document.getElementById("new-token-value").textContent;
  try {
    await navigator.clipboard.writeText(value);
    notify("Token copied.");
  } catch {
    const range = document.createRange();
    range.selectNodeContents(document.getElementById("new-token-value"));
    window.getSelection().removeAllRanges();
    window.getSelection().addRange(range);
    notify("Copying is not allowed here: the token is selected, press Ctrl+C.");
  }
});
document.getElementById("dismiss-token").addEventListener("click", () => {
  document.getElementById("new-token").hidden = true;
  document.getElementById("new-token-value").textContent = "";
  document.getElementById("create-plan").focus();
});
