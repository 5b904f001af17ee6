/**
 * Hot reload of a profile file. Editors replace files rather than write them in place (write a
 * temp file, rename it over the old one), so the watch is on the directory, filtered by name.
 *
 * A directory watch sees nothing that happens behind a symlink: `link/p.yaml -> ../real/p.yaml`
 * edited in `real/`, or a Kubernetes ConfigMap volume, where `chaos.yaml -> ..data/chaos.yaml`
 * and the kubelet swaps the `..data` symlink to a new timestamped folder (the event is named
 * `..data`, and the file's own link never changes). So the path is also polled (`fs.watchFile`,
 * ~1 s): stat follows symlinks and sees a new inode, mtime or size wherever the bytes live.
 *
 * Both sources only schedule a check. Events are debounced (~100 ms); only a real content change
 * (by hash against the last content applied or rejected) is acted on, so one change applies once
 * however many events announce it. An invalid file, or one `onChange` refuses by throwing, is
 * reported and never replaces the good profile; a deleted file keeps the profile in force, and is
 * reported once it has stayed away for a poll interval (a replace is only gone for an instant).
 */
import fs from 'node:fs';
import path from 'node:path';
import { AftershockError, ProfileError } from '../errors.js';
import { hashText, type CompiledProfile } from './compile.js';
import { MAX_PROFILE_BYTES, parseProfile, readProfileFile } from './loader.js';

export interface ProfileWatcher {
  close(): void;
}

const DEBOUNCE_MS = 100;
/** How often the path is stat'ed (following symlinks) besides the directory watch. */
const POLL_MS = 1000;

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
  opts: {
    debounceMs?: number;
    pollMs?: number;
    /** The file holds the profile in force again (reverted after a rejected edit, or back after it was removed). */
    onRestored?: () => void;
    /** The folder could not be watched (`err` says why): changes are found by polling alone. */
    onPollOnly?: (err: Error) => void;
  } = {},
): ProfileWatcher {
  const abs = path.resolve(file);
  const dir = path.dirname(abs);
  const base = path.basename(abs);
  const debounce = opts.debounceMs ?? DEBOUNCE_MS;
  const pollMs = opts.pollMs ?? POLL_MS;
  let closed = false;
  let timer: NodeJS.Timeout | null = null;
  let reading = false;
  let again = false;
  let seen: string | null = null; // hash of the last content looked at (valid or not)
  let good: string | null = null; // hash of the content of the profile in force
  let missing: NodeJS.Timeout | null = null; // the check that a file found gone is still gone
  let missingTold = false;
  try {
    // Only what readProfileFile would read (a FIFO's size is 0 and its read blocks).
    const st = fs.statSync(abs);
    if (st.isFile() && st.size <= MAX_PROFILE_BYTES) good = seen = hashText(fs.readFileSync(abs, 'utf8'));
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
        text = await readProfileFile(abs);
      } catch (err) {
        // Too large, not UTF-8: refused like any invalid content (the profile in force stays).
        if (err instanceof ProfileError) {
          // Seen by its size and time (its content was not read): refused once, not at every poll.
          let mark: string | null = null;
          try {
            const st = fs.statSync(abs);
            mark = `stat:${st.size}:${st.mtimeMs}`;
          } catch {
            /* gone meanwhile: the next look tells */
          }
          if (mark !== null && mark === seen) return;
          seen = mark;
          if (!closed) onError(new ProfileError(err.problems.map((p) => ({ ...p, file })), file));
          return;
        }
        const code = (err as NodeJS.ErrnoException).code;
        // Mid-replace (gone for an instant): the rename's own event follows. Still gone a poll
        // interval later, it was removed: said once, and its return is a change like any other.
        if (code === 'ENOENT') {
          if (missing === null && !missingTold) {
            missing = setTimeout(() => {
              missing = null;
              if (closed || fs.existsSync(abs)) return;
              missingTold = true;
              seen = null;
              onError(new AftershockError('ERR_PROFILE_NOT_FOUND', `profile ${file} was removed; the profile in force stays until the file is back`));
            }, Math.max(pollMs, debounce) + debounce);
            missing.unref();
          }
          return;
        }
        if (!closed) onError(new AftershockError('ERR_PROFILE_NOT_FOUND', `cannot read profile ${file}: ${(err as Error).message}`, { cause: err }));
        return;
      }
      if (closed) return;
      missingTold = false;
      const h = hashText(text);
      if (h === seen) return;
      seen = h;
      if (h === good) {
        opts.onRestored?.(); // back to the content in force: nothing to apply
        return;
      }
      let profile: CompiledProfile;
      try {
        profile = parseProfile(text, file);
      } catch (err) {
        if (!closed) onError(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      if (closed) return;
      try {
        // The receiver may still refuse it (e.g. a rule name an ad-hoc rule has): not applied.
        onChange(profile);
      } catch (err) {
        if (!closed) onError(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      good = h;
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

  // The folder's events make a change apply at once; the poll below catches what they miss. A
  // system out of inotify watches (ENOSPC), descriptors (EMFILE) or without the folder (ENOENT)
  // refuses the watch: the poll alone still applies every change, within `pollMs`.
  let watcher: fs.FSWatcher | null = null;
  let firstLook: NodeJS.Timeout | null = null;
  try {
    watcher = fs.watch(dir, { persistent: false }, (_event, name) => {
      if (name === null || name === base) schedule();
    });
    watcher.on('error', (err) => {
      if (!closed) onError(err);
    });
  } catch (err) {
    opts.onPollOnly?.(err as Error);
    // The poll's first stat is taken in the background: a file written before it is its baseline,
    // not a change. One look after the first interval covers that.
    const first = setTimeout(() => void check(), pollMs);
    first.unref();
    firstLook = first;
  }
  // stat() follows symlinks: a swapped ..data link or an edit of the link's target shows here.
  const onStat = (cur: fs.Stats, prev: fs.Stats): void => {
    if (cur.ino !== prev.ino || cur.mtimeMs !== prev.mtimeMs || cur.size !== prev.size || cur.ctimeMs !== prev.ctimeMs) schedule();
  };
  // Node shares one watcher per path: many proxies on one file (a test suite) are no leak.
  fs.watchFile(abs, { persistent: false, interval: pollMs }, onStat).setMaxListeners(0);

  return {
    close() {
      closed = true;
      if (timer !== null) clearTimeout(timer);
      timer = null;
      if (missing !== null) clearTimeout(missing);
      missing = null;
      watcher?.close();
      if (firstLook !== null) clearTimeout(firstLook);
      fs.unwatchFile(abs, onStat);
    },
  };
}
