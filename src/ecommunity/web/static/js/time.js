// Calendar periods in Austrian time (days start at midnight in Vienna, weeks on Monday), as
// instants [ms]. Only boundaries are computed here: every number shown comes from the API.

import { TIME_ZONE } from "./i18n.js";

const fieldsFormat = new Intl.DateTimeFormat("en-US", {
  timeZone: TIME_ZONE,
  hourCycle: "h23",
  year: "numeric",
  month: "numeric",
  day: "numeric",
  hour: "numeric",
  minute: "numeric",
  second: "numeric",
});

function fields(instantMs) {
  const out = {};
  for (const { type, value } of fieldsFormat.formatToParts(new Date(instantMs))) {
    if (type !== "literal") out[type] = Number(value);
  }
  return out;
}

/** Vienna's offset from UTC at an instant. [ms] */
function offsetMs(instantMs) {
  const f = fields(instantMs);
  const wholeSecond = Math.floor(instantMs / 1000) * 1000;
  return Date.UTC(f.year, f.month - 1, f.day, f.hour, f.minute, f.second) - wholeSecond;
}

/** The instant of midnight in Vienna on year-month-day (month 1-12; days and months may
 * overflow: day 0 is the last of the month before). Midnight always exists in Vienna: its
 * clocks change at 02:00 and 03:00. */
export function viennaMidnight(year, month, day) {
  const wall = Date.UTC(year, month - 1, day);
  const first = wall - offsetMs(wall);
  return wall - offsetMs(first);
}

/** The calendar day in Vienna of an instant; weekday 0 is Monday. */
export function viennaDay(instantMs) {
  const f = fields(instantMs);
  const weekday = (new Date(Date.UTC(f.year, f.month - 1, f.day)).getUTCDay() + 6) % 7;
  return { year: f.year, month: f.month, day: f.day, weekday };
}

export const RANGES = ["day", "week", "month", "year"];

/** [start, end) of the day, week, month or year that holds ``instantMs``, moved by ``shift``
 * such periods (-1: the one before). [ms] */
export function period(range, instantMs, shift = 0) {
  const d = viennaDay(instantMs);
  switch (range) {
    case "day":
      return [
        viennaMidnight(d.year, d.month, d.day + shift),
        viennaMidnight(d.year, d.month, d.day + shift + 1),
      ];
    case "week": {
      const monday = d.day - d.weekday + 7 * shift;
      return [viennaMidnight(d.year, d.month, monday), viennaMidnight(d.year, d.month, monday + 7)];
    }
    case "month":
      return [viennaMidnight(d.year, d.month + shift, 1), viennaMidnight(d.year, d.month + shift + 1, 1)];
    case "year":
      return [viennaMidnight(d.year + shift, 1, 1), viennaMidnight(d.year + shift + 1, 1, 1)];
    default:
      throw new Error(`unknown range ${range}`);
  }
}
