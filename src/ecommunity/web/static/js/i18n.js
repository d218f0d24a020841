// German and English: the language comes from the browser (navigator.languages) until the user
// picks one, which is remembered. Every text of the app is in the two dictionaries; numbers and
// dates are formatted with Intl, always in Austrian time.

import de from "./i18n/de.js";
import en from "./i18n/en.js";

export const DICTIONARIES = { en, de };
export const LANGUAGE_NAMES = { de: "Deutsch", en: "English" };
export const TIME_ZONE = "Europe/Vienna";
const STORAGE_KEY = "ecommunity.language";
const LOCALES = { de: "de-AT", en: "en-GB" };

function stored() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage disabled
  }
}

/** The browser's preferred language among ours; English when it prefers neither. */
export function preferredLanguage(tags = navigator.languages || [navigator.language]) {
  for (const tag of tags) {
    const base = String(tag || "").toLowerCase().split("-")[0];
    if (base in DICTIONARIES) return base;
  }
  return "en";
}

let language = stored() in DICTIONARIES ? stored() : preferredLanguage();

export function currentLanguage() {
  return language;
}

export function locale() {
  return LOCALES[language];
}

/** Switch (and remember) the language; fires "languagechange" on document. */
export function setLanguage(code) {
  if (!(code in DICTIONARIES)) return;
  language = code;
  try {
    localStorage.setItem(STORAGE_KEY, code);
  } catch {
    // not remembered, still switched
  }
  document.documentElement.lang = code;
  document.dispatchEvent(new CustomEvent("languagechange", { detail: code }));
}

/** The text for ``key``, with {placeholders} filled from ``params``. */
export function t(key, params = {}) {
  const text = DICTIONARIES[language][key] ?? DICTIONARIES.en[key];
  if (text === undefined) {
    console.error(`no text for ${key}`);
    return key;
  }
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

/** Fill the static shell's [data-i18n] elements. */
export function translateShell(root = document) {
  for (const element of root.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n);
  }
  document.documentElement.lang = language;
}

// --- formats ------------------------------------------------------------------------------

const cache = new Map();
function numberFormat(fractionDigits) {
  const key = `${language}:${fractionDigits}`;
  if (!cache.has(key)) {
    cache.set(
      key,
      new Intl.NumberFormat(locale(), {
        minimumFractionDigits: fractionDigits,
        maximumFractionDigits: fractionDigits,
      }),
    );
  }
  return cache.get(key);
}

const NBSP = "\u00a0";
export const DASH = "–";

/** A whole number in the user's format. */
export function formatNumber(value, fractionDigits = 0) {
  return numberFormat(fractionDigits).format(value);
}

/** Power [W] as W below 10 kW, else kW. */
export function formatPower(powerW) {
  if (powerW === null || powerW === undefined) return DASH;
  if (Math.abs(powerW) < 10_000) return `${formatNumber(powerW)}${NBSP}W`;
  return `${formatNumber(powerW / 1000, 1)}${NBSP}kW`;
}

/** Energy [Wh]: whole Wh below 1 kWh, else kWh with fewer decimals as it grows. */
export function formatEnergy(energyWh) {
  if (energyWh === null || energyWh === undefined) return DASH;
  if (Math.abs(energyWh) < 1000) return `${formatNumber(energyWh)}${NBSP}Wh`;
  const kwh = energyWh / 1000;
  const digits = Math.abs(kwh) < 100 ? 2 : Math.abs(kwh) < 1000 ? 1 : 0;
  return `${formatNumber(kwh, digits)}${NBSP}kWh`;
}

/** Axis labels for energies [Wh], in one unit and with as many decimals as the steps need. */
export function formatEnergyTicks(valuesWh) {
  const largest = Math.max(0, ...valuesWh.map((value) => Math.abs(value)));
  if (largest < 1000) return valuesWh.map((value) => `${formatNumber(value)}${NBSP}Wh`);
  const step = valuesWh.length > 1 ? Math.abs(valuesWh[1] - valuesWh[0]) : largest;
  const digits = step >= 1000 ? 0 : step >= 100 ? 1 : 2;
  return valuesWh.map((value) => `${formatNumber(value / 1000, digits)}${NBSP}kWh`);
}

function dateTimeFormat(options) {
  const key = `${language}:${JSON.stringify(options)}`;
  if (!cache.has(key)) {
    cache.set(key, new Intl.DateTimeFormat(locale(), { timeZone: TIME_ZONE, ...options }));
  }
  return cache.get(key);
}

/** An instant (Date, ms or ISO text) in Austrian time, with ``options`` of Intl.DateTimeFormat. */
export function formatDate(instant, options = { dateStyle: "medium", timeStyle: "short" }) {
  if (instant === null || instant === undefined) return DASH;
  return dateTimeFormat(options).format(new Date(instant));
}

/** "3 min ago", "vor 3 Min." */
export function formatAgo(seconds) {
  const format = new Intl.RelativeTimeFormat(locale(), { numeric: "auto", style: "short" });
  if (seconds < 60) return format.format(-Math.round(seconds), "second");
  if (seconds < 3600) return format.format(-Math.floor(seconds / 60), "minute");
  if (seconds < 86_400) return format.format(-Math.floor(seconds / 3600), "hour");
  return format.format(-Math.floor(seconds / 86_400), "day");
}

// --- the API's decimals (sent as text: "12.5000") and shares ---------------------------------

function rangeFormat(minDigits, maxDigits, style = "decimal") {
  const key = `${language}:${style}:${minDigits}-${maxDigits}`;
  if (!cache.has(key)) {
    const options = { minimumFractionDigits: minDigits, maximumFractionDigits: maxDigits };
    if (style === "currency") Object.assign(options, { style, currency: "EUR" });
    if (style === "percent") options.style = style;
    cache.set(key, new Intl.NumberFormat(locale(), options));
  }
  return cache.get(key);
}

/** A decimal the API answers as text (or a number), with ``minDigits`` to ``maxDigits``
 * decimals: "12.5000" -> "12.50" (2, 4). */
export function formatDecimal(value, minDigits = 0, maxDigits = 4) {
  if (value === null || value === undefined || value === "") return DASH;
  return rangeFormat(minDigits, maxDigits).format(Number(value));
}

/** A price [ct/kWh] as the API answers it: "12.50 ct/kWh" (the API keeps four decimals). */
export function formatCtPerKwh(value) {
  if (value === null || value === undefined) return DASH;
  return `${formatDecimal(value, 2, 4)}${NBSP}ct/kWh`;
}

/** Euros [€] to the cent: "€12.34" / "€ 12,34". */
export function formatEuro(value) {
  if (value === null || value === undefined) return DASH;
  return rangeFormat(2, 2, "currency").format(Number(value));
}

/** A share 0..1 as a percentage with one decimal: 0.4567 -> "45.7%". */
export function formatShare(fraction) {
  if (fraction === null || fraction === undefined) return DASH;
  return rangeFormat(1, 1, "percent").format(Number(fraction));
}

/** Peak power [kWp] as the API answers it, to the watt at most. */
export function formatKwp(value) {
  if (value === null || value === undefined) return DASH;
  return `${formatDecimal(value, 0, 3)}${NBSP}kWp`;
}

/** A distance [km] with one decimal. */
export function formatKm(value) {
  if (value === null || value === undefined) return DASH;
  return `${formatDecimal(value, 1, 1)}${NBSP}km`;
}

/** A whole percent (participation factors): 57 -> "57%" / "57 %". */
export function formatPercent(value) {
  if (value === null || value === undefined) return DASH;
  return rangeFormat(0, 0, "percent").format(Number(value) / 100);
}
