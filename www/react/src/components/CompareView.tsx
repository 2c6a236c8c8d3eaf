'use client';
/**
 * A second inspection beside the first: its own image (tiled, or from the store) and damage layer,
 * kept on the same point as the main viewer through an alignment (a similarity from image A's pixels
 * to image B's). **Align** sets the alignment from two pairs of corresponding points, clicked in
 * turn in the first image and in the second; until then both show the same relative place.
 * **Curtain** lays the second viewer over the first, cut at a divider that can be dragged (or moved
 * with the arrow keys): left of it the first inspection, right of it the second, on the same points.
 */
import { useEffect, useMemo, useRef, useState } from 'react';
import type { CSSProperties, KeyboardEvent as ReactKeyboardEvent, PointerEvent as ReactPointerEvent } from 'react';
import type OpenSeadragon from 'openseadragon';
import type { Options } from '@tessera/tiler-wasm';
import type { Alignment } from '../align.js';
import { alignmentFrom, defaultAlignment, formatAlignment } from '../align.js';
import type { DamageFeature, Position } from '../geojson.js';
import { useTilingImage } from '../hooks/useTilingImage.js';
import type { ImageInput, TilingSettings } from '../hooks/useTilingImage.js';
import { loadVectors } from '../loadVectors.js';
import { syncViewers } from '../osd/syncViewers.js';
import { usePointCollector } from '../osd/usePointCollector.js';
import { useViewerKeys } from '../osd/useViewerKeys.js';
import { VectorOverlay } from './VectorOverlay.js';
import { Viewer } from './Viewer.js';

export interface CompareViewProps {
  /** The main viewer and its image's size (image A). */
  viewer: OpenSeadragon.Viewer | null;
  width: number;
  height: number;
  /** The second inspection's image (image B) and its damage layer. */
  src: ImageInput;
  vectorSrc?: string | null;
  /** Tiling options and store settings, as the main image's. */
  options?: Options;
  settings?: TilingSettings;
  /** Image A's pixels → image B's; null: the same relative place until Align sets one. */
  alignment?: Alignment | null;
  /** Called with the alignment Align sets, so the app can keep it with the two inspections. */
  onAlignmentChange?: (alignment: Alignment) => void;
}

const STEPS = [
  'a point in the first image',
  'the same point in the second',
  'a second point in the first image',
  'the same point in the second',
];

export function CompareView({
  viewer,
  width,
  height,
  src,
  vectorSrc,
  options,
  settings,
  alignment = null,
  onAlignmentChange,
}: CompareViewProps) {
  const [tileSource, setImageSrc, status] = useTilingImage(options, settings);
  const [other, setOther] = useState<OpenSeadragon.Viewer | null>(null);
  const [features, setFeatures] = useState<DamageFeature[]>([]);
  const [layerError, setLayerError] = useState<string | null>(null);
  const [set, setSet] = useState<Alignment | null>(alignment);
  const [from, setFrom] = useState<Alignment | null>(alignment);
  if (alignment !== from) {
    setFrom(alignment);
    setSet(alignment);
  }
  /** The points clicked so far while aligning (A, B, A, B), or null when not aligning. */
  const [picked, setPicked] = useState<Position[] | null>(null);
  const [alignError, setAlignError] = useState<string | null>(null);
  const [curtain, setCurtain] = useState(false);
  /** Where the divider is, in percent of the width from the left. */
  const [cut, setCut] = useState(50);
  const divider = useRef<HTMLDivElement>(null);
  const info = status.info;

  useEffect(() => setImageSrc(src), [src, setImageSrc]);
  useEffect(() => {
    setFeatures([]);
    setLayerError(null);
    if (!vectorSrc) return;
    const abort = new AbortController();
    loadVectors(vectorSrc, abort.signal).then(setFeatures, (e: Error) => !abort.signal.aborted && setLayerError(e.message));
    return () => abort.abort();
  }, [vectorSrc]);

  const effective = useMemo(() => set ?? (info ? defaultAlignment(width, info.width) : null), [set, info, width]);
  // Both viewers on the same point, except while points are being picked (each is moved on its own).
  useEffect(() => {
    if (!viewer || !other || !info || !effective || picked) return;
    return syncViewers({ viewer, width }, { viewer: other, width: info.width }, effective);
  }, [viewer, other, info, width, effective, picked]);

  const pick = (point: Position) => {
    if (!picked) return;
    const next = [...picked, point];
    if (next.length < 4) {
      setPicked(next);
      return;
    }
    setPicked(null);
    try {
      const made = alignmentFrom(next[0], next[2], next[1], next[3]);
      setSet(made);
      setAlignError(null);
      onAlignmentChange?.(made);
    } catch (e) {
      setAlignError((e as Error).message);
    }
  };
  const step = picked?.length ?? 0;
  usePointCollector(viewer, width, height, { active: !!picked && step % 2 === 0, last: undefined, onPoint: pick, onEnd: () => {} });
  usePointCollector(other, info?.width ?? 0, info?.height ?? 0, {
    active: !!picked && step % 2 === 1,
    last: undefined,
    onPoint: pick,
    onEnd: () => {},
  });
  useViewerKeys(other, { escape: picked ? () => setPicked(null) : undefined });

  const dragDivider = (e: ReactPointerEvent<HTMLDivElement>) => {
    if (e.type === 'pointerdown') e.currentTarget.setPointerCapture(e.pointerId);
    else if (!e.currentTarget.hasPointerCapture(e.pointerId)) return;
    const box = e.currentTarget.parentElement?.getBoundingClientRect();
    if (box && box.width > 0) setCut(Math.min(100, Math.max(0, ((e.clientX - box.left) / box.width) * 100)));
  };
  const nudgeDivider = (e: ReactKeyboardEvent) => {
    const by = { ArrowLeft: -5, ArrowRight: 5, Home: -100, End: 100 }[e.key];
    if (by === undefined) return;
    e.preventDefault();
    setCut((c) => Math.min(100, Math.max(0, c + by)));
  };

  return (
    <>
      {curtain && (
        <div
          ref={divider}
          className="curtain-divider"
          data-testid="curtain-divider"
          role="slider"
          tabIndex={0}
          aria-label="Curtain: where the second inspection begins"
          aria-valuemin={0}
          aria-valuemax={100}
          aria-valuenow={Math.round(cut)}
          style={{ left: `${cut}%` }}
          onPointerDown={dragDivider}
          onPointerMove={dragDivider}
          onKeyDown={nudgeDivider}
        />
      )}
      <Viewer
        tileSource={tileSource}
        status={status}
        onViewer={setOther}
        name="compare"
        className={curtain ? 'curtain' : undefined}
        style={curtain ? ({ '--curtain': `${cut}%` } as CSSProperties) : undefined}
      >
        {info && <VectorOverlay viewer={other} width={info.width} height={info.height} features={features} selected={null} />}
        <div
          className="compare-toolbar"
          data-testid="compare"
          data-alignment={effective ? formatAlignment(effective) : undefined}
          data-aligned={String(set !== null)}
          data-step={picked ? step : undefined}
        >
          <button
            type="button"
            aria-pressed={!!picked}
            title="Click two pairs of corresponding points (Escape stops)"
            onClick={() => setPicked(picked ? null : [])}
          >
            Align
          </button>
          <button
            type="button"
            aria-pressed={curtain}
            title="Lay the second inspection over the first, cut at a divider"
            onClick={() => setCurtain((c) => !c)}
          >
            Curtain
          </button>
          {picked && <span role="status">Click {STEPS[step]}</span>}
          {!picked && set && (
            <span>
              Aligned: ×{set.scale.toFixed(3)}, {((set.rotation * 180) / Math.PI).toFixed(1)}°
            </span>
          )}
          {(alignError ?? layerError) && (
            <span className="error" role="alert">
              {alignError ?? layerError}
            </span>
          )}
        </div>
      </Viewer>
    </>
  );
}
