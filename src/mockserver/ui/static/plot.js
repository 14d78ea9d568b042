// Requests per minute by status over the last hour of the mock's clock: a stacked bar chart
// drawn as inline SVG from the journal's entries (no charting library).

const KNOWN = new Set([0, 200, 400, 401, 429, 500]);

/** The colour class of a status in the chart: one per status the mock answers. */
function colour(status) {
  return `s-${KNOWN.has(status) ? status : "other"}`;
}

const SVG = "http://www.w3.org/2000/svg";
const MINUTE = 60 * 1000;
const MINUTES = 60;
const HEIGHT = 200;
const PAD = { left: 34, right: 8, top: 10, bottom: 24 };

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Count `entries` per minute and status for the hour ending at `nowIso`. */
export function bucket(entries, nowIso) {
  const end = Math.floor(Date.parse(nowIso) / MINUTE) * MINUTE + MINUTE;
  const start = end - MINUTES * MINUTE;
  const minutes = Array.from({ length: MINUTES }, (_, i) => ({ start: start + i * MINUTE, counts: new Map() }));
  const statuses = new Set();
  for (const entry of entries) {
    const time = Date.parse(entry.time);
    if (!(time >= start && time < end)) continue;
    const minute = minutes[Math.floor((time - start) / MINUTE)];
    minute.counts.set(entry.status, (minute.counts.get(entry.status) || 0) + 1);
    statuses.add(entry.status);
  }
  return { minutes, statuses: [...statuses].sort((a, b) => a - b) };
}

/** The top of the y axis: a round number whose half is a whole number too. */
function niceMax(value) {
  if (value <= 4) return 4;
  const step = 10 ** Math.floor(Math.log10(value));
  for (const factor of [1, 2, 4, 6, 8, 10]) {
    if (factor * step >= value) return factor * step;
  }
  return 10 * step;
}

function hhmm(time) {
  return new Date(time).toISOString().slice(11, 16);
}

/** Draw the chart into `container` and its legend into `legend`. */
export function renderPlot(container, legend, entries, nowIso) {
  // Drawn at the container's own width, so that its text keeps its size on a phone.
  const WIDTH = Math.max(280, Math.floor(container.clientWidth) || 640);
  const { minutes, statuses } = bucket(entries, nowIso);
  const totals = minutes.map((minute) => [...minute.counts.values()].reduce((a, b) => a + b, 0));
  const top = niceMax(Math.max(0, ...totals));
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const slot = plotWidth / MINUTES;
  const y = (count) => PAD.top + plotHeight - (count / top) * plotHeight;

  const sum = totals.reduce((a, b) => a + b, 0);
  const byStatus = statuses.map((status) => `${status === 0 ? "dropped" : status}: ${minutes.reduce((n, m) => n + (m.counts.get(status) || 0), 0)}`);
  const chart = svg("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: "img",
    "aria-labelledby": "plot-svg-title plot-svg-desc",
    class: "chart",
    width: WIDTH,
    height: HEIGHT,
  });
  chart.append(
    svg("title", { id: "plot-svg-title" }, "Requests per minute by status, last hour (UTC)"),
    svg("desc", { id: "plot-svg-desc" }, sum ? `${sum} requests in the last hour; ${byStatus.join(", ")}.` : "No requests in the last hour."),
  );
  for (const tick of [0, top / 2, top]) {
    chart.append(
      svg("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(tick), y2: y(tick), class: "grid" }),
      svg("text", { x: PAD.left - 4, y: y(tick) + 4, class: "axis", "text-anchor": "end" }, String(tick)),
    );
  }
  minutes.forEach((minute, i) => {
    const x = PAD.left + i * slot;
    // A label every 10 minutes (20 on a phone), none crowding the "now" at the right end.
    const every = WIDTH < 480 ? 20 : 10;
    if (i % every === 0 && x < WIDTH - PAD.right - 95) {
      chart.append(svg("text", { x, y: HEIGHT - 6, class: "axis" }, hhmm(minute.start)));
    }
    let stacked = 0;
    for (const status of statuses) {
      const count = minute.counts.get(status) || 0;
      if (!count) continue;
      const bar = svg("rect", {
        x: x + 1,
        width: Math.max(slot - 2, 1),
        y: y(stacked + count),
        height: y(stacked) - y(stacked + count),
        class: `bar ${colour(status)}`,
        rx: Math.min(2, slot / 6),
        "data-status": status,
        "data-count": count,
        "data-minute": hhmm(minute.start),
      });
      bar.append(svg("title", {}, `${hhmm(minute.start)} UTC: ${count} × ${status === 0 ? "dropped" : status}`));
      chart.append(bar);
      stacked += count;
    }
  });
  chart.append(svg("text", { x: WIDTH - PAD.right, y: HEIGHT - 6, class: "axis", "text-anchor": "end" }, `${hhmm(minutes[MINUTES - 1].start + MINUTE)} now`));
  container.replaceChildren(chart);

  legend.replaceChildren(
    ...statuses.map((status, i) => {
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = `swatch ${colour(status)}`;
      item.append(swatch, byStatus[i]);
      return item;
    }),
  );
  if (!statuses.length) {
    const item = document.createElement("li");
    item.className = "muted";
    item.textContent = "No requests in the last hour of the mock's clock.";
    legend.append(item);
  }
}
