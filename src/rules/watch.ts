/**
 * Hot reload of a profile file. Editors replace files rather than write them in place (write a
 * temp file, rename it over the old one), so the watch is on the directory, filtered by name.
 * Events are debounced (~100 ms); only a real content change (by hash) is acted on; an invalid file
 * is reported and never replaces the good profile.
 */
import fs from 'node:fs';
import path from 'node:path';
import { AftershockError, ProfileError } from '../errors.js';
import { hashText, type CompiledProfile } from './compile.js';
import { parseProfile } from './loader.js';

export interface ProfileWatcher {
  close(): void;
}

const DEBOUNCE_MS = 100;

/**
 * Watches `file`; calls `onChange` with each new valid profile and `onError` for each invalid one
 * (or an unreadable file). The profile that is active stays active until a valid change arrives.
 *
 * @example
 * const w = watchProfile('chaos.yaml', (p) => engine.setProfile(p), (err) => log.error(err.message));
 * // ... later
 * w.close();
 */
export function watchProfile(
  file: string,
  onChange: (profile: CompiledProfile) => void,
  onError: (err: ProfileError | Error) => void,
  opts: { debounceMs?: number } = {},
): ProfileWatcher {
  const abs = path.resolve(file);
  const dir = path.dirname(abs);
  const base = path.basename(abs);
  const debounce = opts.debounceMs ?? DEBOUNCE_MS;
  let closed = false;
  let timer: NodeJS.Timeout | null = null;
  let reading = false;
  let again = false;
  let seen: string | null = null; // hash of the last content looked at (valid or not)
  let good: string | null = null; // hash of the content of the profile in force
  try {
    good = seen = hashText(fs.readFileSync(abs, 'utf8'));
  } catch {
    // Not readable yet: the first valid content will be applied.
  }

  const check = async (): Promise<void> => {
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    try {
      let text: string;
      try {
        text = await fs.promises.readFile(abs, 'utf8');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // Mid-replace (gone for an instant): the rename's own event follows.
        if (code === 'ENOENT') return;
        if (!closed) onError(new AftershockError('ERR_PROFILE_NOT_FOUND', `cannot read profile ${file}: ${(err as Error).message}`, { cause: err }));
        return;
      }
      if (closed) return;
      const h = hashText(text);
      if (h === seen) return;
      seen = h;
      if (h === good) return; // back to the content in force: nothing to apply
      let profile: CompiledProfile;
      try {
        profile = parseProfile(text, file);
      } catch (err) {
        if (!closed) onError(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      good = h;
      if (!closed) onChange(profile);
    } finally {
      reading = false;
      if (again && !closed) {
        again = false;
        schedule();
      }
    }
  };

  const schedule = (): void => {
    if (closed) return;
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      void check();
    }, debounce);
  };

  const watcher = fs.watch(dir, { persistent: false }, (_event, name) => {
    if (name === null || name === base) schedule();
  });
  watcher.on('error', (err) => {
    if (!closed) onError(err);
  });

  return {
    close() {
      closed = true;
      if (timer !== null) clearTimeout(timer);
      timer = null;
      watcher.close();
    },
  };
}
