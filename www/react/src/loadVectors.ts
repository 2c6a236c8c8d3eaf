/** Fetching a vector layer (`vectorSrc`) with errors a person can act on. */
import { parseDamage } from './geojson.js';
import type { DamageFeature } from './geojson.js';

/** The features of the GeoJSON layer at `url`; throws an Error saying what went wrong. */
export async function loadVectors(url: string, signal: AbortSignal): Promise<DamageFeature[]> {
  let response: Response;
  try {
    response = await fetch(url, { signal, credentials: 'omit' });
  } catch (e) {
    if (signal.aborted) throw e;
    const cross = new URL(url, document.baseURI).origin !== location.origin;
    throw new Error(
      cross
        ? `Could not read the vector layer ${url}: its server does not allow this site (no CORS header) or cannot be reached.`
        : `Could not reach the vector layer ${url}.`,
    );
  }
  if (!response.ok) throw new Error(`Vector layer ${url}: HTTP ${response.status}${response.status === 404 ? ' Not Found' : ''}.`);
  let json: unknown;
  try {
    json = await response.json();
  } catch {
    throw new Error(`Vector layer ${url} is not JSON.`);
  }
  try {
    return parseDamage(json);
  } catch (e) {
    throw new Error(`Vector layer ${url}: ${(e as Error).message}.`);
  }
}
