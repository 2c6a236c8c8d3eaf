/**
 * Keyboard shortcuts for the tools over a viewer. A key works wherever focus is but in a form field
 * (and never with Alt); when the image has focus, OpenSeadragon sees the key first and is told to
 * leave a bound key alone, so a tool's key never also pans, rotates or zooms.
 */
import { useEffect, useRef } from 'react';
import type OpenSeadragon from 'openseadragon';

/**
 * Handlers by `KeyboardEvent.key`, lower-cased (`'l'`, `'enter'`, `'delete'`), after `ctrl+` (Ctrl or
 * ⌘) and then `shift+` when Shift is held with it (`'ctrl+z'`, `'ctrl+shift+z'`); undefined: not bound now.
 */
export type KeyBindings = Record<string, (() => void) | undefined>;

/** The binding name of a key event. */
function keyName(e: KeyboardEvent): string {
  const ctrl = e.ctrlKey || e.metaKey;
  return `${ctrl ? 'ctrl+' : ''}${ctrl && e.shiftKey ? 'shift+' : ''}${e.key.toLowerCase()}`;
}

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
      if (typing(e) || e.altKey) return;
      const handler = current.current[keyName(e)];
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
      const original = event.originalEvent as KeyboardEvent;
      if (original.key && current.current[keyName(original)]) event.preventDefaultAction = true;
    };
    viewer.addHandler('canvas-key', onCanvasKey);
    return () => viewer.removeHandler('canvas-key', onCanvasKey);
  }, [viewer]);
}
