/**
 * "Did you mean": the closest known word to a mistyped one, for error messages (profile keys,
 * fault types, gate metrics).
 */

/** Levenshtein distance between two strings. */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] as number;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j] as number;
      prev[j] = Math.min((prev[j] as number) + 1, (prev[j - 1] as number) + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length] as number;
}

/**
 * The candidate closest to `word` (case-insensitive) within `maxDistance` edits, or null.
 *
 * @example closestWord('probabilty', ['probability', 'match'], 2) === 'probability'
 */
export function closestWord(word: string, candidates: readonly string[], maxDistance: number): string | null {
  const lw = word.toLowerCase();
  let best: string | null = null;
  let bestD = maxDistance + 1;
  for (const c of candidates) {
    if (Math.abs(c.length - word.length) > maxDistance) continue;
    const d = editDistance(lw, c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best;
}
