/**
 * Turns request paths into bounded `route` labels for /metrics.
 *
 * A label value per raw path would grow one time series per user id. So ids are folded
 * (`/users/42/orders/9f1c…` -> `/users/:id/orders/:id`) and the number of distinct routes is
 * capped: the first `maxRoutes` routes seen keep their own label, every later one is `other`
 * (admission by first sight, as a cheap stand-in for "top N": no counting per unseen route).
 */

/** Segments that are ids: numbers, UUIDs, long hex (hashes, object ids), hex with digits. */
const NUMERIC = /^\d+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HEX_WITH_DIGIT = /^(?=[a-f]*\d)[0-9a-f]{8,}$/i;
const LONG_HEX = /^[0-9a-f]{16,}$/i;

/** The label used once the cap is reached. */
export const OTHER_ROUTE = 'other';

/** Longest label kept (longer routes are cut; a path is never a reason to blow up a scrape). */
const MAX_LABEL_LENGTH = 200;

/**
 * Folds id-like segments of a path into `:id`.
 *
 * @example normalizeRoute('/v1/users/42/avatar') === '/v1/users/:id/avatar'
 */
export function normalizeRoute(path: string): string {
  const q = path.indexOf('?');
  const p = q === -1 ? path : path.slice(0, q);
  if (p === '' || p === '/') return '/';
  const parts = p.split('/');
  for (let i = 0; i < parts.length; i++) {
    const s = parts[i] as string;
    if (s !== '' && (NUMERIC.test(s) || UUID.test(s) || HEX_WITH_DIGIT.test(s) || LONG_HEX.test(s) || s.startsWith('[redacted'))) parts[i] = ':id';
  }
  const route = parts.join('/');
  return route.length > MAX_LABEL_LENGTH ? route.slice(0, MAX_LABEL_LENGTH) : route;
}

export interface RouteLabeler {
  /** The label for this path: its normalised route, or `other` past the cap. */
  label(path: string): string;
  /** Distinct routes admitted so far. */
  readonly size: number;
}

/**
 * A labeler with a cap on distinct routes and a small cache of raw paths.
 *
 * @example
 * const routes = createRouteLabeler(200);
 * routes.label('/orders/17') // '/orders/:id'
 */
export function createRouteLabeler(maxRoutes = 200): RouteLabeler {
  const admitted = new Set<string>();
  // Raw path -> label; cleared when full so memory stays bounded whatever the traffic.
  const cache = new Map<string, string>();
  const CACHE_MAX = 10_000;
  return {
    label(path) {
      const hit = cache.get(path);
      if (hit !== undefined) return hit;
      const route = normalizeRoute(path);
      let label = route;
      if (!admitted.has(route)) {
        if (admitted.size < maxRoutes) admitted.add(route);
        else label = OTHER_ROUTE;
      }
      if (cache.size >= CACHE_MAX) cache.clear();
      cache.set(path, label);
      return label;
    },
    get size() {
      return admitted.size;
    },
  };
}
