/**
 * OpenSeadragon touches `document` as soon as it is imported, so this package never imports it at
 * module level on the React side: the viewer loads it on mount, in the browser, and everything that
 * needs its classes runs after that. Importing `@tessera/react` on a server is then harmless.
 */
import type OpenSeadragonNamespace from 'openseadragon';

export type OpenSeadragonModule = typeof OpenSeadragonNamespace;

let loaded: OpenSeadragonModule | null = null;
let loading: Promise<OpenSeadragonModule> | null = null;

/** Imports OpenSeadragon once (the bundler splits it into its own chunk). */
export function loadOpenSeadragon(): Promise<OpenSeadragonModule> {
  loading ??= import('openseadragon').then((m) => {
    loaded = ((m as { default?: OpenSeadragonModule }).default ?? m) as OpenSeadragonModule;
    return loaded;
  });
  return loading;
}

/** OpenSeadragon, once loaded; a viewer exists only after that, so code working on one can call this. */
export function openSeadragon(): OpenSeadragonModule {
  if (!loaded) throw new Error('OpenSeadragon is not loaded yet (loadOpenSeadragon)');
  return loaded;
}

/**
 * The tile source classes. They extend OpenSeadragon's, so they load with it, on first use in the
 * browser (a separate chunk), never on import.
 */
export const loadTileSources = (): Promise<typeof import('./tileSources.js')> => import('./tileSources.js');
