// The gateway's dashboard and setup page: plain ES module, no build step, no CDN.
const ZONE = "Europe/Vienna";
const timeFormat = new Intl.DateTimeFormat(undefined, {
  timeZone: ZONE, dateStyle: "short", timeStyle: "medium",
});
const hourFormat = new Intl.DateTimeFormat(undefined, { timeZone: ZONE, hour: "2-digit", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat("en-CA", { timeZone: ZONE });  // YYYY-MM-DD
const $ = (id) => document.getElementById(id);

let lastReadingAt = null;     // Date the latest reading was received
let midnightCounters = null;  // {imp, exp, day}: counters at Vienna midnight, for today's tiles
let todayAskedAt = 0;         // Date.now() of the last request for today's energy
let chartData = null;         // the last answer for the chart, redrawn when the size changes

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { Accept: "application/json", ...(options.body ? { "Content-Type": "application/json" } : {}) },
  });
  let body = null;
  try { body = await response.json(); } catch { /* no JSON body */ }
  if (!response.ok) {
    const error = new Error(body?.detail || `${response.status} ${response.statusText}`);
    error.code = body?.code;
    throw error;
  }
  return body;
}

function kwh(wh) { return wh == null ? "–" : (wh / 1000).toFixed(wh < 10000 ? 2 : 1); }
function watts(w) { return w == null ? "–" : String(w); }

// -- live readings ---------------------------------------------------------------------------
function showReading(reading) {
  $("power-import").textContent = watts(reading.power_import_w);
  $("power-export").textContent = watts(reading.power_export_w);
  lastReadingAt = new Date(reading.received_at || reading.meter_timestamp);
  $("last-reading").textContent = timeFormat.format(new Date(reading.meter_timestamp || lastReadingAt));
  $("last-reading").dateTime = reading.meter_timestamp || "";
  // A new day in Austria starts today's tiles again.
  if (midnightCounters && dayFormat.format(lastReadingAt) !== midnightCounters.day) midnightCounters = null;
  // No counters yet (the page came before the first reading, or midnight passed): ask again,
  // at most every 10 s, and redraw the chart that had nothing to show.
  if (!midnightCounters && Date.now() - todayAskedAt > 10000) { loadToday(); loadChart(); }
  if (midnightCounters && reading.energy_import_wh != null) {
    $("today-import").textContent = kwh(reading.energy_import_wh - midnightCounters.imp);
    $("today-export").textContent = kwh(reading.energy_export_wh - midnightCounters.exp);
  }
  $("no-meter").hidden = true;
  updateFreshness();
}

function updateFreshness() {
  const badge = $("freshness");
  if (!lastReadingAt) { badge.textContent = "no data"; badge.className = "badge stale"; return; }
  const ageS = (Date.now() - lastReadingAt.getTime()) / 1000;
  if (ageS < 30) { badge.textContent = "live"; badge.className = "badge live"; }
  else if (ageS < 600) { badge.textContent = `${Math.round(ageS / 60) || 1} min ago`; badge.className = "badge"; }
  else { badge.textContent = "stale"; badge.className = "badge stale"; }
}

function connectLive() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/api/v1/live`);
  socket.onopen = updateFreshness;  // "no data" rather than "connecting…" before a reading
  socket.onmessage = (event) => showReading(JSON.parse(event.data));
  socket.onclose = () => setTimeout(connectLive, 2000);
}

async function loadToday() {
  todayAskedAt = Date.now();
  try {
    const [today, latest] = await Promise.all([api("/api/v1/energy/today"), api("/api/v1/readings/latest")]);
    if (today.energy_import_wh != null) {
      midnightCounters = {
        imp: latest.energy_import_wh - today.energy_import_wh,
        exp: latest.energy_export_wh - (today.energy_export_wh ?? 0),
        day: today.day,
      };
    }
    showReading(latest);
  } catch (error) {
    if (error.code === "no-reading") $("no-meter").hidden = false;
  }
}

// -- chart -----------------------------------------------------------------------------------
const SVG = "http://www.w3.org/2000/svg";
function svg(name, attrs) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

async function loadChart() {
  try { chartData = await api("/api/v1/readings?resolution=15min"); } catch { return; }
  drawChart();
}

function drawChart() {
  if (!chartData) return;
  const chart = $("chart");
  // Drawn at the size it is shown (a stretched viewBox would squash the labels on a phone).
  const width = Math.round(chart.clientWidth) || 960, height = Math.round(chart.clientHeight) || 300;
  chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
  chart.replaceChildren();
  const intervals = chartData.intervals || [];
  const top = 10, bottom = 24, mid = top + (height - top - bottom) * 0.7;
  // Average power of a quarter hour: its energy times four. [W]
  const up = intervals.map((i) => (i.energy_import_wh ?? 0) * 4);
  const down = intervals.map((i) => (i.energy_export_wh ?? 0) * 4);
  const max = Math.max(100, ...up, ...down);
  const scaleUp = (mid - top) / max, scaleDown = (height - bottom - mid) / max;
  const barWidth = width / Math.max(intervals.length, 1);
  intervals.forEach((interval, n) => {
    const x = n * barWidth;
    const title = `${hourFormat.format(new Date(interval.start))}: ${up[n]} W in, ${down[n]} W out`;
    if (up[n] > 0) {
      const bar = svg("rect", { x, y: mid - up[n] * scaleUp, width: barWidth * 0.85, height: up[n] * scaleUp, class: "bar-import" });
      bar.append(svg("title", {})); bar.lastChild.textContent = title; chart.append(bar);
    }
    if (down[n] > 0) {
      const bar = svg("rect", { x, y: mid, width: barWidth * 0.85, height: down[n] * scaleDown, class: "bar-export" });
      bar.append(svg("title", {})); bar.lastChild.textContent = title; chart.append(bar);
    }
    if (n % 16 === 0 && x < width - 36) {
      const label = svg("text", { x, y: height - 6 });
      label.textContent = hourFormat.format(new Date(interval.start));
      chart.append(label);
    }
  });
  chart.append(svg("line", { x1: 0, x2: width, y1: mid, y2: mid, class: "axis" }));
  const label = svg("text", { x: 4, y: top + 10 });
  label.textContent = `${Math.round(max)} W`;
  chart.append(label);
}

// -- status ----------------------------------------------------------------------------------
async function loadStatus() {
  let status;
  try { status = await api("/api/v1/status"); } catch { return; }
  $("gateway-name").textContent = status.name;
  document.title = `${status.name} – eCommunity gateway`;
  const reader = status.reader || {};
  const errors = Object.entries(reader.frame_errors || {}).map(([k, v]) => `${v} ${k}`).join(", ") || "none";
  const uplink = status.uplink;
  const rows = [
    ["Meter", `${status.meter.profile} on ${status.meter.serial_port ?? "– (not set up)"}`],
    ["Readings stored", reader.readings_stored],
    ["Frame errors", errors],
    ["Cloud", status.cloud_url ?? "local only"],
    ["Uplink", uplink ? `${uplink.state}${uplink.detail ? ": " + uplink.detail : ""}` : (status.pairing ? "pairing" : "–")],
    ["Backlog", uplink?.backlog_minutes != null ? `${uplink.backlog_minutes} min` : "–"],
    ["Version", status.version],
  ];
  $("status-list").replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = String(v ?? "–");
    return [dt, dd];
  }));
  showPairing(status.pairing);
  if (status.setup === "setup") $("no-meter").hidden = false;
}

function showPairing(pairing) {
  const waiting = pairing && pairing.state === "waiting" && pairing.user_code;
  $("pairing").hidden = !waiting;
  if (waiting) {
    $("pairing-code").textContent = pairing.user_code;
    const link = $("pairing-uri");
    link.textContent = pairing.verification_uri;
    link.href = pairing.verification_uri_complete || pairing.verification_uri;
  }
}

// -- setup -----------------------------------------------------------------------------------
async function loadSetup() {
  const setup = await api("/api/v1/setup");
  $("setup-closed").hidden = setup.open;
  $("serial-ports").replaceChildren(...setup.serial_ports.map((port) => {
    const option = document.createElement("option");
    option.value = port.device; option.label = port.description; return option;
  }));
  if (!$("serial-port").value) $("serial-port").value = setup.meter.serial_port ?? "";
  const select = $("profile");
  if (!select.options.length) {
    select.replaceChildren(...setup.profiles.map((profile) => {
      const option = document.createElement("option");
      option.value = profile.name;
      option.textContent = `${profile.title} (${profile.name})`;
      return option;
    }));
  }
  select.value = setup.meter.profile;
  if (setup.meter.key_set) $("key").placeholder = "saved (enter a new key to change it)";
  if (!$("name").value) $("name").value = setup.name;
  if (!$("cloud-url").value) $("cloud-url").value = setup.cloud_url ?? "";
  showPairing(setup.pairing);
  try {
    const wifi = await api("/api/v1/setup/wifi");
    $("wifi-networks").replaceChildren(...wifi.networks.map((n) => {
      const option = document.createElement("option");
      option.value = n.ssid; option.label = `${n.signal_percent ?? "?"} %${n.in_use ? " (connected)" : ""}`;
      return option;
    }));
    $("wifi-note").textContent = `${wifi.networks.length} network(s) in reach.`;
  } catch (error) {
    $("wifi-note").textContent = error.message;
  }
}

function formData(form) {
  const data = {};
  for (const [key, value] of new FormData(form)) if (String(value).trim() !== "") data[key] = String(value).trim();
  return data;
}

function handleForm(id, path, resultId, ok, busyText) {
  $(id).addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target, result = $(resultId), button = form.querySelector("button");
    button.disabled = true;
    result.className = "result"; result.textContent = busyText;
    try {
      const body = await api(path, { method: "POST", body: JSON.stringify(formData(form)) });
      result.className = "result ok"; result.textContent = ok(body);
      loadStatus();
    } catch (error) {
      result.className = "result error"; result.textContent = error.message;
    } finally {
      button.disabled = false;
    }
  });
}

handleForm("meter-form", "/api/v1/setup/meter", "meter-result",
  (body) => {
    // The key is saved: keep it off the screen.
    $("key").value = ""; $("auth-key").value = "";
    $("key").placeholder = "saved (enter a new key to change it)";
    return `Saved: the key works. First reading: ${body.reading.energy_import_wh} Wh imported.`;
  },
  "Checking the key against the meter's frames (up to 30 s)…");
handleForm("gateway-form", "/api/v1/setup/gateway", "gateway-result", () => "Saved.", "Saving…");
handleForm("wifi-form", "/api/v1/setup/wifi", "wifi-result", (body) => `Connected to ${body.connected}.`, "Connecting…");

// -- navigation ------------------------------------------------------------------------------
function route() {
  const setup = location.hash === "#setup";
  $("dashboard").hidden = setup;
  $("setup").hidden = !setup;
  $("nav-setup").toggleAttribute("aria-current", setup);
  $("nav-dashboard").toggleAttribute("aria-current", !setup);
  if (setup) { $("nav-setup").setAttribute("aria-current", "page"); loadSetup().catch(() => {}); }
  else { $("nav-dashboard").setAttribute("aria-current", "page"); drawChart(); }
}

window.addEventListener("hashchange", route);
let resizing = null;
window.addEventListener("resize", () => { clearTimeout(resizing); resizing = setTimeout(drawChart, 200); });
route();
loadStatus();
loadToday();
loadChart();
connectLive();
setInterval(updateFreshness, 5000);
setInterval(loadStatus, 10000);
setInterval(loadChart, 60000);
setInterval(loadToday, 300000);
