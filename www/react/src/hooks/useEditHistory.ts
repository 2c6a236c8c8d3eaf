/** A value with undo and redo: each `set` is one step; `reset` starts a new history (a newly loaded layer). */
import { useCallback, useState } from 'react';

export interface EditHistory<T> {
  value: T;
  /** Makes `next` the value, as one undoable step. */
  set: (next: T) => void;
  /** Makes `value` the value with no history. */
  reset: (value: T) => void;
  /** Steps back; returns the value it went to, or undefined when there was none. */
  undo: () => T | undefined;
  /** Steps forward again; returns the value it went to, or undefined when there was none. */
  redo: () => T | undefined;
  canUndo: boolean;
  canRedo: boolean;
}

interface Stacks<T> {
  past: T[];
  present: T;
  future: T[];
}

/** Steps kept for undo; the oldest are dropped past it. */
export const UNDO_STEPS = 200;

export function useEditHistory<T>(initial: T): EditHistory<T> {
  const [stacks, setStacks] = useState<Stacks<T>>({ past: [], present: initial, future: [] });

  const set = useCallback(
    (next: T) => setStacks((s) => ({ past: [...s.past, s.present].slice(-UNDO_STEPS), present: next, future: [] })),
    [],
  );
  const reset = useCallback((value: T) => setStacks({ past: [], present: value, future: [] }), []);
  // The stacks are read from the render's state, so the value gone to can be returned at once.
  const undo = useCallback((): T | undefined => {
    const previous = stacks.past[stacks.past.length - 1];
    if (stacks.past.length === 0) return undefined;
    setStacks({ past: stacks.past.slice(0, -1), present: previous, future: [stacks.present, ...stacks.future] });
    return previous;
  }, [stacks]);
  const redo = useCallback((): T | undefined => {
    if (stacks.future.length === 0) return undefined;
    const [next, ...rest] = stacks.future;
    setStacks({ past: [...stacks.past, stacks.present].slice(-UNDO_STEPS), present: next, future: rest });
    return next;
  }, [stacks]);

  return { value: stacks.present, set, reset, undo, redo, canUndo: stacks.past.length > 0, canRedo: stacks.future.length > 0 };
}
