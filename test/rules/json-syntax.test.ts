/**
 * The JSON syntax scanner that says where a `.json` profile stops being JSON: it agrees with
 * `JSON.parse` on what is JSON (property-based, on generated documents and single-character
 * mutations of them), and it points at the right member.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { findJsonSyntaxError } from '../../src/rules/json-syntax.js';

const parses = (t: string): boolean => {
  try {
    JSON.parse(t);
    return true;
  } catch {
    return false;
  }
};

const doc = fc.tuple(fc.jsonValue({ maxDepth: 4 }), fc.constantFrom(0, 1, 2, '\t')).map(([v, indent]) => JSON.stringify(v, null, indent));

describe('findJsonSyntaxError', () => {
  it('finds nothing in JSON', () => {
    fc.assert(fc.property(doc, (t) => findJsonSyntaxError(t) === null), { numRuns: 500 });
  });

  it('agrees with JSON.parse on every one-character edit of a JSON document', () => {
    const edit = fc.tuple(doc, fc.nat(), fc.constantFrom('', ',', '}', ']', '{', '[', '"', ':', "'", '/', 'x', '0', '-', '.', '\\', '\n', ' '));
    fc.assert(
      fc.property(edit, ([t, at, c]) => {
        const i = t.length === 0 ? 0 : at % t.length;
        const mutated = t.slice(0, i) + c + t.slice(i + 1);
        expect(findJsonSyntaxError(mutated) === null).toBe(parses(mutated));
      }),
      { numRuns: 3000 },
    );
  });

  it('names the member it was reading and where', () => {
    expect(findJsonSyntaxError('{"a": [1, 2, {"b": tru}]}')).toMatchObject({ path: ['a', 2, 'b'], offset: 19, head: 'unexpected tru' });
    expect(findJsonSyntaxError('{"a": 1 "b": 2}')).toMatchObject({ path: [], head: 'expected "," or "}" after a value, found "\\""', tail: 'is a "," missing?' });
    expect(findJsonSyntaxError('[1, 2,]')).toMatchObject({ path: [], head: 'a trailing comma before "]"' });
    expect(findJsonSyntaxError('{"a": "x\ny"}')).toMatchObject({ path: ['a'], head: 'a line break inside a string (an unclosed quote?)' });
    expect(findJsonSyntaxError('{"a": 01}')).toMatchObject({ path: ['a'], head: 'a bad number' });
    expect(findJsonSyntaxError('{} {}')).toMatchObject({ offset: 3, head: 'unexpected "{" after the end of the JSON value' });
    expect(findJsonSyntaxError('{"a": "\\q"}')?.head).toBe('a bad escape "\\q" in a string');
    expect(findJsonSyntaxError('{"a": "x')).toMatchObject({ atEnd: true, head: 'the text ends inside a string (a missing closing quote?)' });
    // Deep nesting cannot overflow the scanner's stack.
    expect(findJsonSyntaxError('['.repeat(200_000))?.head).toBe('the text ends inside a list (an unclosed "["?)');
  });
});
