'use client';
/**
 * Measuring on the image: a ruler (the length of a path), an area tool (a polygon's area and
 * outline) and calibration (draw a line, type its real length: that sets the scale). Points are
 * clicked on the image and kept in image pixels, so a measurement stays put at every zoom. Each tool
 * has a toolbar button and a key (L, P, C: none of OpenSeadragon's own keys, so W/A/S/D panning and
 * R rotation keep working; `useViewerKeys`); Enter ends a path, Escape drops it.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import type { FormEvent } from 'react';
import { createPortal } from 'react-dom';
import type OpenSeadragon from 'openseadragon';
import type { Position } from '../geojson.js';
import { calibrate, formatArea, formatLength, formatNumber, pathLength, ringArea, ringPerimeter } from '../measure.js';
import type { Scale } from '../measure.js';
import { usePointCollector } from '../osd/usePointCollector.js';
import { useImageOverlay } from '../osd/useImageOverlay.js';
import { useViewerKeys } from '../osd/useViewerKeys.js';

export type MeasureTool = 'ruler' | 'area' | 'calibrate' | 'width';

export interface MeasureToolsProps {
  /** The viewer to measure on (Viewer's `onViewer`). */
  viewer: OpenSeadragon.Viewer | null;
  /** The oriented image's size. */
  width: number;
  height: number;
  /** The current scale (real units per image pixel), or null to measure in pixels. */
  scale: Scale | null;
  /** Called with the scale the calibration tool sets. */
  onScaleChange: (scale: Scale) => void;
  /** Another tool has the clicks: the toolbar is off. */
  disabled?: boolean;
  /** Called when a tool is turned on or off (so other tools can stand aside). */
  onActiveChange?: (active: boolean) => void;
  /** The chosen feature's index, which the Width tool measures; null: the Width tool is off. */
  widthTarget?: number | null;
  /** Called with the width (image pixels) drawn across `widthTarget`. */
  onWidth?: (pixels: number) => void;
}

const TOOLS: { tool: MeasureTool; key: string; label: string; title: string }[] = [
  { tool: 'ruler', key: 'l', label: 'Ruler', title: 'Measure a length: click points, Enter to end (L)' },
  { tool: 'area', key: 'p', label: 'Area', title: 'Measure an area: click the corners of a polygon, Enter to end (P)' },
  { tool: 'calibrate', key: 'c', label: 'Calibrate', title: 'Set the scale: draw a line of known length (C)' },
  { tool: 'width', key: 'b', label: 'Width', title: "The chosen feature's width: draw a short line across it (B)" },
];

/** The tools that take exactly two points (a line), and end on the second. */
const TWO_POINTS: MeasureTool[] = ['calibrate', 'width'];

/** Most points one measurement takes (a bound on what clicks can pile up). */
const MAX_POINTS = 1000;

export function MeasureTools({
  viewer,
  width,
  height,
  scale,
  onScaleChange,
  disabled = false,
  onActiveChange,
  widthTarget = null,
  onWidth,
}: MeasureToolsProps) {
  const [tool, setTool] = useState<MeasureTool | null>(null);
  const [points, setPoints] = useState<Position[]>([]);
  const [ended, setEnded] = useState(false);
  const [realLength, setRealLength] = useState('');
  const [unit, setUnit] = useState(scale?.unit ?? 'mm');
  const [calibrationError, setCalibrationError] = useState<string | null>(null);
  const overlay = useImageOverlay(viewer, width, height, 'measure-overlay', 'measure-overlay');
  // The calibration line is drawn: its real length is typed next.
  const lengthField = useRef<HTMLInputElement>(null);
  const asksLength = tool === 'calibrate' && ended;
  useEffect(() => {
    if (asksLength) lengthField.current?.focus();
  }, [asksLength]);

  const choose = useCallback((next: MeasureTool | null) => {
    setTool((current) => (current === next ? null : next));
    setPoints([]);
    setEnded(false);
    setCalibrationError(null);
  }, []);
  const end = useCallback(() => setEnded(true), []);
  const usable = (t: MeasureTool) => !disabled && (t !== 'width' || widthTarget !== null);
  // The Width tool measures the chosen feature: choosing none (or another) ends it.
  const [measuredTarget, setMeasuredTarget] = useState(widthTarget);
  if (measuredTarget !== widthTarget) {
    setMeasuredTarget(widthTarget);
    if (tool === 'width') choose(null);
  }
  useEffect(() => onActiveChange?.(tool !== null), [tool, onActiveChange]);

  // Clicks on the image add points while a tool is on (and then do not zoom or pan).
  usePointCollector(viewer, width, height, {
    active: !!tool && !ended && !disabled,
    last: points[points.length - 1],
    onPoint: (point) => {
      if (points.length >= MAX_POINTS) return;
      const next = [...points, point];
      setPoints(next);
      if (tool && TWO_POINTS.includes(tool) && next.length === 2) {
        setEnded(true);
        if (tool === 'width') onWidth?.(pathLength(next));
      }
    },
    onEnd: end,
  });

  useViewerKeys(viewer, {
    ...Object.fromEntries(TOOLS.map((t) => [t.key, usable(t.tool) ? () => choose(t.tool) : undefined])),
    enter: tool ? end : undefined,
    escape: tool ? () => choose(null) : undefined,
  });

  const length = tool === 'area' ? ringPerimeter(points) : pathLength(points);
  const area = tool === 'area' && points.length >= 3 ? ringArea(points) : null;

  const setScale = (e: FormEvent) => {
    e.preventDefault();
    try {
      onScaleChange(calibrate(length, Number(realLength), unit));
      choose(null);
    } catch (err) {
      setCalibrationError((err as Error).message);
    }
  };

  const d = points.map((p, i) => `${i === 0 ? 'M' : 'L'}${p[0]} ${p[1]}`).join('') + (tool === 'area' && ended ? 'Z' : '');
  return (
    <>
      <div className="measure-toolbar" role="toolbar" aria-label="Measure">
        {TOOLS.map((t) => (
          <button
            key={t.tool}
            type="button"
            title={t.title}
            aria-pressed={tool === t.tool}
            disabled={!usable(t.tool)}
            onClick={() => choose(t.tool)}
          >
            {t.label}
          </button>
        ))}
      </div>
      {tool && (
        <div
          className="measure-result"
          data-testid="measure-result"
          data-tool={tool}
          data-ended={String(ended)}
          data-points={points.length}
          data-length-px={length}
          data-area-px={area ?? undefined}
          data-length={scale ? length * scale.value : undefined}
          data-area={scale && area !== null ? area * scale.value * scale.value : undefined}
          data-unit={scale?.unit}
          role="status"
        >
          {points.length === 0 && <p>{TOOLS.find((t) => t.tool === tool)?.title}</p>}
          {tool === 'width' && ended && <p>Width {formatLength(length, scale)}, kept with the feature</p>}
          {points.length > 1 && tool !== 'calibrate' && tool !== 'width' && (
            <p>
              {tool === 'area' ? 'Outline' : 'Length'} {formatLength(length, scale)}
            </p>
          )}
          {area !== null && <p>Area {formatArea(area, scale)}</p>}
          {tool === 'calibrate' && ended && (
            <form onSubmit={setScale} className="calibrate">
              <span>{formatNumber(length)} px is</span>
              <input
                aria-label="Real length"
                inputMode="decimal"
                value={realLength}
                onChange={(e) => setRealLength(e.target.value)}
                ref={lengthField}
                size={6}
              />
              <input aria-label="Unit" value={unit} onChange={(e) => setUnit(e.target.value)} size={3} />
              <button type="submit">Set scale</button>
              {calibrationError && (
                <p className="error" role="alert">
                  {calibrationError}
                </p>
              )}
            </form>
          )}
        </div>
      )}
      {overlay.placed &&
        points.length > 0 &&
        createPortal(
          <svg viewBox={`0 0 ${width} ${height}`} preserveAspectRatio="none" width="100%" height="100%" xmlns="http://www.w3.org/2000/svg">
            <title>The measurement</title>
            <path className={tool === 'area' ? 'area' : 'line'} d={d} />
            {points.map((p, i) => (
              // biome-ignore lint/suspicious/noArrayIndexKey: points are only appended; a point's place in the path is its identity.
              <circle key={i} className="vertex" cx={p[0]} cy={p[1]} />
            ))}
          </svg>,
          overlay.host,
        )}
    </>
  );
}
