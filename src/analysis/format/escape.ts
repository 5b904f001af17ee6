/**
 * Escaping for every output: a report shows strings the clients chose (User-Agents, paths, client
 * keys, mark labels), so each format escapes them for its own syntax. A hostile User-Agent must not
 * inject markup into HTML, break a Markdown table, end an XML attribute, or move a terminal cursor.
 */

/**
 * HTML text and attribute values (double- or single-quoted). Control characters (NUL, ESC, CR ...)
 * are shown as `\xNN`, as in the text output, and what HTML cannot carry at all (lone surrogates,
 * U+FFFE, U+FFFF) becomes U+FFFD, as in XML: a recorded string reaches the page as visible text.
 *
 * @example escapeHtml('<script>"x"</script>') === '&lt;script&gt;&quot;x&quot;&lt;/script&gt;'
 * @example escapeHtml('a\u0000b') === 'a\\x00b'
 */
export function escapeHtml(s: string): string {
  return stripControls(s)
    .replace(HTML_INVALID, '\uFFFD')
    .replace(/[&<>"'`]/g, (c) => HTML_ENTITIES[c] as string);
}

/** Code points no HTML document may contain, controls aside (those `stripControls` shows). */
const HTML_INVALID = /[\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

const HTML_ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

/** Characters XML 1.0 does not allow at all (they cannot even be escaped). */
// eslint-disable-next-line no-control-regex
const XML_INVALID = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * XML text and attribute values; characters XML cannot carry become U+FFFD.
 *
 * @example escapeXml('a<b & "c"') === 'a&lt;b &amp; &quot;c&quot;'
 */
export function escapeXml(s: string): string {
  return s
    .replace(XML_INVALID, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/**
 * Markdown table cells and inline text: HTML-significant characters as entities, Markdown syntax
 * backslash-escaped, line breaks flattened (a cell must stay on one line), and what GitHub would
 * act on broken with a zero-width space: a report posted as a pull-request comment must not
 * notify `@someone` named in a User-Agent, cross-reference `#123` or `GH-123` in another issue,
 * or turn a recorded URL into a link. The text reads the same; only the autolinks are gone.
 *
 * @example escapeMarkdown('a|b <i>') === 'a\\|b &lt;i&gt;'
 * @example escapeMarkdown('bot @octocat #12') === 'bot @&#8203;octocat #&#8203;12'
 */
export function escapeMarkdown(s: string): string {
  return stripControls(s)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/[\\`*_{}[\]|~]/g, '\\$&')
    .replace(/\s+/g, ' ')
    .replace(AUTOLINKS, (m) => `${m.slice(0, -1)}${ZWSP}${m.slice(-1)}`);
}

/**
 * Like `escapeMarkdown`, but the text's own code spans (`` `sleep = random(...)` ``, as the findings'
 * advice writes them) stay code: only a `|` in them is escaped, which a table cell needs and GitHub
 * shows as `|`. Everything outside them is escaped as `escapeMarkdown` does.
 *
 * @example escapeMarkdownKeepCode('use `a|b` @x') === 'use `a\\|b` @&#8203;x'
 */
export function escapeMarkdownKeepCode(s: string): string {
  let out = '';
  let last = 0;
  for (const m of stripControls(s).matchAll(/`[^`\n]+`/g)) {
    out += escapeMarkdown(m.input.slice(last, m.index)) + m[0].replace(/\|/g, '\\|');
    last = m.index + m[0].length;
  }
  return out + escapeMarkdown(stripControls(s).slice(last));
}

/** A zero-width space as an entity: invisible, but no mention, reference or URL runs across it. */
const ZWSP = '&#8203;';

/**
 * What GitHub links in comment text: `@user` and `@org/team` (and e-mail addresses), `#123` and
 * `owner/repo#123`, `GH-123`, and URLs (`scheme://`, `www.`). Each match ends just before the
 * character the zero-width space goes in front of. Runs after the entity escapes, which emit no `#`.
 */
const AUTOLINKS = /@[^\s@]|#\d|\bGH-\d|:\/|\bwww\./gi;

/**
 * Terminal-safe text: control characters (ESC, CR, BEL ...) shown as `\xNN`, so a recorded string
 * cannot recolour or rewrite the terminal.
 *
 * @example stripControls('a\u001b[31mb') === 'a\\x1b[31mb'
 */
export function stripControls(s: string): string {
  // Bidirectional overrides and isolates (U+202A-202E, U+2066-2069) and line/paragraph separators
  // too: a recorded name could otherwise reorder or break how the report reads.
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001F\u007F-\u009F\u2028\u2029\u202A-\u202E\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`;
  });
}

/**
 * How a fault window's recovery reads in every format: seconds, "never" only when amplified
 * traffic was still arriving when the data ended, else "n/a" with the reason it cannot be told.
 */
export function recoveryText(w: { recoverySeconds: number | null; recoveryNote?: string }, unit: string): string {
  if (w.recoverySeconds !== null) return `${w.recoverySeconds}${unit}`;
  const note = w.recoveryNote ?? 'unknown';
  return note === 'the data ended first' ? `never (${note})` : `n/a (${note})`;
}
