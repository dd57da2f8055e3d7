// Every date and time the app shows goes through here, so the three languages follow one
// rule: Finnish conventions. Finnish uses its own formats, Swedish those of Finland's Swedish
// speakers (sv-FI: "7.12.2026 20.49", not Sweden's "2026-12-07 20:49"); English is written
// the way it is in Finland (and Britain): the day before the month ("7 Dec", never "12/7")
// and a 24-hour clock. The schools are in Helsinki, so a moment is shown in Helsinki time.

const HELSINKI = 'Europe/Helsinki';

// 'en' alone would be American (month first, a.m./p.m.); 'en-GB' gives day-month order.
// 'sv' alone is Sweden's (ISO dates, "7/12"); 'sv-FI' is how Swedish is written in Finland.
const LOCALES = { en: 'en-GB', sv: 'sv-FI' };
const locale = (lang) => LOCALES[lang] || lang;

const cache = new Map();
function formatter(lang, options) {
  const key = `${lang}|${JSON.stringify(options)}`;
  if (!cache.has(key)) cache.set(key, new Intl.DateTimeFormat(locale(lang), options));
  return cache.get(key);
}

// A school day (YYYY-MM-DD) is a calendar date, not a moment: formatted at noon UTC so no
// time zone moves it to the day before or after.
const noon = (day) => new Date(`${day}T12:00:00Z`);

/** A moment (an ISO time stamp): "7.12.2026 klo 9.00", "7.12.2026 09.00", "7 Dec 2026, 09:00". */
export function when(iso, lang) {
  const options = lang === 'en'
    ? { dateStyle: 'medium', timeStyle: 'short', hourCycle: 'h23', timeZone: HELSINKI }
    : { dateStyle: 'short', timeStyle: 'short', hourCycle: 'h23', timeZone: HELSINKI };
  try {
    return formatter(lang, options).format(new Date(iso));
  } catch (_) {
    return iso;
  }
}

/** A school day with its weekday: "maanantaina 7.12.", "måndag 7.12", "Monday 7 Dec". */
export function dayLabel(day, lang) {
  const month = lang === 'en' ? 'short' : 'numeric';
  return formatter(lang, { weekday: 'long', day: 'numeric', month, timeZone: 'UTC' }).format(noon(day));
}

/** A school day without its weekday: "7.12.", "7.12", "7 Dec". */
export function dateLabel(day, lang) {
  const month = lang === 'en' ? 'short' : 'numeric';
  return formatter(lang, { day: 'numeric', month, timeZone: 'UTC' }).format(noon(day));
}

/** From one school day to another ("7.12.–11.12."); one day alone when they are the same. */
export function dateRange(from, to, lang) {
  return from === to || !to ? dateLabel(from, lang) : `${dateLabel(from, lang)}–${dateLabel(to, lang)}`;
}

/** A time of day as the records keep it ("08:15:00"): "08:15", the 24-hour clock in every
 * language (a timetable reads the same in all three). */
export function clock(time) {
  return (time || '').slice(0, 5);
}

/**
 * How long ago ``iso`` was, from ``now`` (a Date): "5 minuuttia sitten", "för 2 timmar
 * sedan", "yesterday". Whole minutes under an hour, hours under a day, then days; a time
 * ahead of ``now`` (a clock set back) counts as now.
 */
export function age(iso, now, lang) {
  const minutes = Math.max(0, Math.floor((now.getTime() - new Date(iso).getTime()) / 60_000));
  const relative = new Intl.RelativeTimeFormat(locale(lang), { numeric: 'auto' });
  if (minutes < 60) return relative.format(-minutes, 'minute');
  if (minutes < 24 * 60) return relative.format(-Math.floor(minutes / 60), 'hour');
  return relative.format(-Math.floor(minutes / (24 * 60)), 'day');
}
