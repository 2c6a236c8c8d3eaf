/**
 * Keyboard shortcuts for the tools over a viewer. A key works wherever focus is but in a form field
 * (and never with Ctrl, Alt or Meta); when the image has focus, OpenSeadragon sees the key first
 * and is told to leave a bound key alone, so a tool's key never also pans, rotates or zooms.
 */
import { useEffect, useRef } from 'react';
import type OpenSeadragon from 'openseadragon';

/** Handlers by `KeyboardEvent.key`, lower-cased (`'l'`, `'enter'`, `'escape'`); undefined: not bound now. */
export type KeyBindings = Record<string, (() => void) | undefined>;

/** Keys typed into a form field are the field's, not shortcuts. */
function typing(e: KeyboardEvent): boolean {
  const el = e.target as HTMLElement | null;
  return !!el && (el.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName));
}

export function useViewerKeys(viewer: OpenSeadragon.Viewer | null, bindings: KeyBindings): void {
  // The latest bindings, without re-registering listeners on every render.
  const current = useRef(bindings);
  current.current = bindings;

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (typing(e) || e.ctrlKey || e.metaKey || e.altKey) return;
      const handler = current.current[e.key.toLowerCase()];
      if (!handler) return;
      e.preventDefault();
      handler();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  useEffect(() => {
    if (!viewer) return;
    const onCanvasKey = (event: OpenSeadragon.CanvasKeyEvent) => {
      const key = (event.originalEvent as KeyboardEvent).key?.toLowerCase();
      if (key && current.current[key]) event.preventDefaultAction = true;
    };
    viewer.addHandler('canvas-key', onCanvasKey);
    return () => viewer.removeHandler('canvas-key', onCanvasKey);
  }, [viewer]);
}
