// The app's words in Finnish, Swedish and English. The language follows the person's own
// setting (GET /me: language.language, chosen in Settings or the roster's); before login,
// the browser's language. Each language's words are a module of their own (js/words/), loaded
// when the app first speaks it: a device downloads one language, not three. index.html starts
// loading the expected one beside the other modules (from REMEMBERED, else the browser's
// language), so a cold start does not wait a round trip more for its words.

/** The words of each language, loaded on first use. Literal paths: the service worker caches
 * them all (sw.js SHELL) for offline starts. */
const LOADERS = {
  fi: () => import('./words/fi.js'),
  sv: () => import('./words/sv.js'),
  en: () => import('./words/en.js'),
};
export const LANGUAGES = Object.keys(LOADERS);

/** localStorage's key for the language last spoken; index.html reads it to preload its words. */
export const REMEMBERED = 'reppu-language';

/** @type {Record<string, Record<string, string>>} */
const loaded = {};
let current = 'fi';
let asked = 'fi';
/** @type {Record<string, string>} */
let words = {};

/** The language the app speaks for a setting: Finnish, Swedish or English as it says; English
 * for a language the app has no words for (a family whose language is Arabic or Russian is
 * likelier to read English than Finnish); Finnish when nothing is known. index.html's
 * preloading script decides the same way. */
export function spokenFor(code) {
  return LANGUAGES.includes(code) ? code : (code ? 'en' : 'fi');
}

/** The language a start expects before it knows the person: the one last spoken on this
 * device, else the browser's (index.html preloads its words by the same rule). */
export function expectedLanguage() {
  let remembered = null;
  try { remembered = localStorage.getItem(REMEMBERED); } catch (_) { /* private mode */ }
  return remembered || (typeof navigator !== 'undefined' && navigator.language || 'fi').slice(0, 2);
}

/** Speak the language of a setting (see spokenFor), once its words are loaded. */
export async function setLanguage(code) {
  const chosen = spokenFor(code);
  asked = chosen;
  if (!loaded[chosen]) loaded[chosen] = (await LOADERS[chosen]()).default;
  // Two calls in flight (a refreshed /me beside a choice in Settings): the last asked wins.
  if (asked !== chosen) return current;
  words = loaded[chosen];
  current = chosen;
  if (typeof document !== 'undefined') document.documentElement.lang = current;
  try { localStorage.setItem(REMEMBERED, current); } catch (_) { /* private mode: no preload */ }
  return current;
}

export function language() { return current; }

/** The language a person reads the app in, from GET /me: the effective one the server
 * decided (chosen, else the roster's, else English); an older cached /me has only the
 * roster's. */
export function languageOf(me) {
  return (me.language && me.language.language) || me.person.language;
}

/** A language's name in the current language ("arabia", "arabiska", "Arabic"), else its code. */
export function languageName(code) {
  try { return new Intl.DisplayNames([current], { type: 'language' }).of(code) || code; } catch (_) { return code; }
}

/** Each language's name in itself, for the picker: a reader finds their own. */
export const OWN_NAMES = { fi: 'Suomi', sv: 'Svenska', en: 'English' };

/** The text of ``key`` in the current language, with ``{name}`` filled from ``vars``. */
export function t(key, vars = {}) {
  const text = words[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ''));
}

/** A form definition's text ({fi: ..., sv: ...}) in the reader's language, else the first. */
export function localText(texts, languages = []) {
  if (!texts) return '';
  return texts[current] ?? texts[languages[0]] ?? Object.values(texts)[0] ?? '';
}

// Words the service worker shows in notifications. A worker may not import() a module, and no
// page is open to translate them, so they are here, in every language.
const PUSH_WORDS = {
  fi: { title: 'Reppu: uutta tietoa', body: 'Avaa Reppu nähdäksesi.' },
  sv: { title: 'Reppu: ny information', body: 'Öppna Reppu för att se den.' },
  en: { title: 'Reppu: something new', body: 'Open Reppu to see it.' },
};

/** A notification's default title and body in the language of a setting (see spokenFor). */
export function pushWords(code) {
  return PUSH_WORDS[spokenFor(code)];
}
