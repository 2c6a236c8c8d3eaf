'use client';
/**
 * Editing the damage layer on the image: **Edit** turns it on; then Point, Line and Polygon draw new
 * features (click points; Enter or a double-click ends a line or polygon), the chosen feature's
 * vertices can be dragged, Delete removes it, Ctrl+Z / Ctrl+Shift+Z (or Ctrl+Y) undo and redo, and
 * Download saves the layer as `.geojson`. Every change goes through `onEdit` as a new feature list.
 */
import { useEffect, useRef, useState } from 'react';
import { createPortal } from 'react-dom';
import type OpenSeadragon from 'openseadragon';
import type { DamageFeature, Position } from '../geojson.js';
import { toFeatureCollection, withGeometry } from '../geojson.js';
import { MIN_POINTS, moveVertex, newGeometry, vertices } from '../editGeometry.js';
import type { DrawKind } from '../editGeometry.js';
import { elementToImagePoint } from '../osd/imageSpace.js';
import { openSeadragon } from '../osd/load.js';
import { usePointCollector } from '../osd/usePointCollector.js';
import { useImageOverlay } from '../osd/useImageOverlay.js';
import { useViewerKeys } from '../osd/useViewerKeys.js';
import { saveFile } from '../saveFile.js';

export interface LayerEditorProps {
  viewer: OpenSeadragon.Viewer | null;
  /** The oriented image's size. */
  width: number;
  height: number;
  /** Every feature of the layer. */
  features: DamageFeature[];
  /** The chosen feature's `index`, or null. */
  selected: number | null;
  /** Called with the new feature list after each change, and the feature to choose then. */
  onEdit: (features: DamageFeature[], select: number | null) => void;
  /** Steps back or forward through the changes. */
  onUndo: () => void;
  onRedo: () => void;
  canUndo: boolean;
  canRedo: boolean;
  /** Another tool has the clicks: drawing is off. */
  disabled?: boolean;
  /** Called when editing is turned on or off. */
  onEditingChange?: (editing: boolean) => void;
  /** Called when drawing a new feature starts or ends (its clicks are the drawing's). */
  onDrawingChange?: (drawing: boolean) => void;
}

const DRAW: { kind: DrawKind; label: string }[] = [
  { kind: 'Point', label: 'Point' },
  { kind: 'LineString', label: 'Line' },
  { kind: 'Polygon', label: 'Polygon' },
];

/** Most points one drawn feature takes. */
const MAX_POINTS = 10_000;

/** Saves `features` as `damage.geojson`. */
function download(features: DamageFeature[]) {
  saveFile(new Blob([JSON.stringify(toFeatureCollection(features), null, 1)], { type: 'application/geo+json' }), 'damage.geojson');
}

const pathData = (points: readonly Position[], close: boolean) =>
  points.map((p, i) => `${i === 0 ? 'M' : 'L'}${p[0]} ${p[1]}`).join('') + (close ? 'Z' : '');

export function LayerEditor({
  viewer,
  width,
  height,
  features,
  selected,
  onEdit,
  onUndo,
  onRedo,
  canUndo,
  canRedo,
  disabled = false,
  onEditingChange,
  onDrawingChange,
}: LayerEditorProps) {
  const [editing, setEditing] = useState(false);
  const [drawing, setDrawing] = useState<DrawKind | null>(null);
  const [points, setPoints] = useState<Position[]>([]);
  /** A vertex being dragged: which, and the chosen feature's geometry as it is drawn meanwhile. */
  const [drag, setDrag] = useState<{ address: number[]; feature: DamageFeature } | null>(null);
  const overlay = useImageOverlay(viewer, width, height, 'edit-overlay', 'edit-overlay');
  const chosen = features.find((f) => f.index === selected) ?? null;

  useEffect(() => onEditingChange?.(editing), [editing, onEditingChange]);
  useEffect(() => onDrawingChange?.(drawing !== null), [drawing, onDrawingChange]);
  useEffect(() => {
    if (disabled) setDrawing(null);
  }, [disabled]);

  const startDrawing = (kind: DrawKind | null) => {
    setDrawing((d) => (d === kind ? null : kind));
    setPoints([]);
  };
  const finish = (done: Position[] = points) => {
    const geometry = drawing && newGeometry(drawing, done);
    if (geometry) {
      const index = features.reduce((max, f) => Math.max(max, f.index), -1) + 1;
      const feature = withGeometry(
        { index, id: null, geometry, label: null, class: null, confidence: null, bbox: [0, 0, 0, 0], properties: {} },
        geometry,
      );
      onEdit([...features, feature], index);
    }
    setDrawing(null);
    setPoints([]);
  };
  const remove = () => {
    if (chosen)
      onEdit(
        features.filter((f) => f !== chosen),
        null,
      );
  };

  usePointCollector(viewer, width, height, {
    active: editing && drawing !== null && !disabled,
    last: points[points.length - 1],
    onPoint: (point) => {
      if (points.length >= MAX_POINTS) return;
      const next = [...points, point];
      if (drawing === 'Point') finish(next);
      else setPoints(next);
    },
    onEnd: () => finish(),
  });

  useViewerKeys(viewer, {
    enter: editing && drawing ? () => finish() : undefined,
    escape: editing && drawing ? () => startDrawing(null) : undefined,
    delete: editing && chosen && !drawing ? remove : undefined,
    backspace: editing && chosen && !drawing ? remove : undefined,
    'ctrl+z': editing ? onUndo : undefined,
    'ctrl+shift+z': editing ? onRedo : undefined,
    'ctrl+y': editing ? onRedo : undefined,
  });

  const shown = drag?.feature ?? chosen;
  const handles = editing && !drawing && shown && viewer ? vertices(shown.geometry) : [];

  // Dragging a handle. Native listeners on the overlay, beneath OpenSeadragon's canvas: a React
  // handler would see the pointer only after OpenSeadragon had started panning with it.
  const live = useRef({ shown, features, onEdit, drag });
  live.current = { shown, features, onEdit, drag };
  useEffect(() => {
    if (!viewer) return;
    const host = overlay.host;
    const imagePoint = (e: PointerEvent): Position => {
      const rect = viewer.element.getBoundingClientRect();
      const { Point } = openSeadragon();
      const [x, y] = elementToImagePoint(viewer, width, new Point(e.clientX - rect.left, e.clientY - rect.top));
      return [Math.min(Math.max(x, 0), width), Math.min(Math.max(y, 0), height)];
    };
    /** The dragged vertex's address and its feature with the vertex under the pointer, or null with no drag. */
    const moved = (e: PointerEvent) => {
      const d = live.current.drag;
      return d && { address: d.address, feature: withGeometry(d.feature, moveVertex(d.feature.geometry, d.address, imagePoint(e))) };
    };
    const down = (e: PointerEvent) => {
      const target = e.target as Element;
      const address = target.getAttribute('data-address');
      const feature = live.current.shown;
      if (address === null || !feature) return;
      e.stopPropagation();
      e.preventDefault();
      target.setPointerCapture(e.pointerId);
      const start = { address: address === '' ? [] : address.split('.').map(Number), feature };
      live.current.drag = start;
      setDrag(start);
    };
    const move = (e: PointerEvent) => {
      const next = moved(e);
      if (!next) return;
      e.stopPropagation();
      live.current.drag = next;
      setDrag(next);
    };
    const up = (e: PointerEvent) => {
      const feature = moved(e)?.feature;
      if (!feature) return;
      e.stopPropagation();
      live.current.drag = null;
      setDrag(null);
      live.current.onEdit(
        live.current.features.map((f) => (f.index === feature.index ? feature : f)),
        feature.index,
      );
    };
    host.addEventListener('pointerdown', down);
    host.addEventListener('pointermove', move);
    host.addEventListener('pointerup', up);
    return () => {
      host.removeEventListener('pointerdown', down);
      host.removeEventListener('pointermove', move);
      host.removeEventListener('pointerup', up);
    };
  }, [viewer, overlay.host, width, height]);

  return (
    <>
      <div className="edit-toolbar" role="toolbar" aria-label="Edit the damage layer">
        <button
          type="button"
          aria-pressed={editing}
          onClick={() => {
            setEditing((e) => !e);
            startDrawing(null);
          }}
        >
          Edit
        </button>
        {editing && (
          <>
            {DRAW.map((d) => (
              <button
                key={d.kind}
                type="button"
                aria-pressed={drawing === d.kind}
                disabled={disabled}
                title={`Draw a ${d.label.toLowerCase()}: ${MIN_POINTS[d.kind] === 1 ? 'click it' : 'click points, Enter to end'}`}
                onClick={() => startDrawing(d.kind)}
              >
                {d.label}
              </button>
            ))}
            <button type="button" disabled={!chosen} title="Delete the chosen feature (Delete)" onClick={remove}>
              Delete
            </button>
            <button type="button" disabled={!canUndo} title="Undo (Ctrl+Z)" onClick={onUndo}>
              Undo
            </button>
            <button type="button" disabled={!canRedo} title="Redo (Ctrl+Shift+Z)" onClick={onRedo}>
              Redo
            </button>
            <button type="button" title="Save the layer as GeoJSON" onClick={() => download(features)}>
              Download
            </button>
          </>
        )}
      </div>
      {overlay.placed &&
        (points.length > 0 || handles.length > 0) &&
        createPortal(
          <svg viewBox={`0 0 ${width} ${height}`} preserveAspectRatio="none" width="100%" height="100%" xmlns="http://www.w3.org/2000/svg">
            <title>{drawing ? 'The feature being drawn' : "The chosen feature's vertices"}</title>
            {points.length > 0 && <path className="drawing" d={pathData(points, false)} />}
            {points.map((p, i) => (
              // biome-ignore lint/suspicious/noArrayIndexKey: points are only appended; a point's place in the path is its identity.
              <circle key={i} className="vertex" cx={p[0]} cy={p[1]} />
            ))}
            {shown &&
              handles.map((v) => (
                <circle
                  key={v.address.join('.')}
                  className="handle"
                  data-testid="vertex-handle"
                  data-address={v.address.join('.')}
                  cx={v.position[0]}
                  cy={v.position[1]}
                />
              ))}
          </svg>,
          overlay.host,
        )}
    </>
  );
}

export interface FeaturePropertiesProps {
  feature: DamageFeature;
  /** Called with the feature's new label, class and confidence. */
  onChange: (feature: DamageFeature) => void;
}

/** The longest label or class taken. */
const MAX_TEXT = 200;

/** The form's text for a feature's properties. */
const fieldsOf = (f: DamageFeature) => ({
  label: f.label ?? '',
  cls: f.class ?? '',
  confidence: f.confidence === null ? '' : String(f.confidence),
});

/**
 * Label, class and confidence of the chosen feature; a change applies when its field is left or Enter
 * is pressed. Whenever the feature changes (another one, an undo, or this form's own change applied),
 * the fields show what it has now; the element stays, so focus stays in the field being typed in.
 */
export function FeatureProperties({ feature, onChange }: FeaturePropertiesProps) {
  const [fields, setFields] = useState(() => fieldsOf(feature));
  const [shown, setShown] = useState(feature);
  if (shown !== feature) {
    setShown(feature);
    setFields(fieldsOf(feature));
  }
  const [error, setError] = useState<string | null>(null);

  const apply = () => {
    const text = (v: string) => (v.trim() === '' ? null : v.trim().slice(0, MAX_TEXT));
    let confidence: number | null = null;
    if (fields.confidence.trim() !== '') {
      confidence = Number(fields.confidence);
      if (!Number.isFinite(confidence) || confidence < 0 || confidence > 1) {
        setError('Confidence is a number from 0 to 1.');
        return;
      }
    }
    setError(null);
    const next = { ...feature, label: text(fields.label), class: text(fields.cls), confidence };
    if (next.label !== feature.label || next.class !== feature.class || next.confidence !== feature.confidence) onChange(next);
  };
  const field = (key: keyof typeof fields, label: string, extra: object = {}) => (
    <label>
      {label}
      <input
        value={fields[key]}
        maxLength={MAX_TEXT}
        onChange={(e) => setFields({ ...fields, [key]: e.target.value })}
        onBlur={apply}
        onKeyDown={(e) => e.key === 'Enter' && apply()}
        {...extra}
      />
    </label>
  );
  return (
    <section className="panel feature-properties" data-testid="feature-properties">
      <h2>Feature</h2>
      {field('label', 'Label')}
      {field('cls', 'Class')}
      {field('confidence', 'Confidence', { inputMode: 'decimal', placeholder: '0–1' })}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}
