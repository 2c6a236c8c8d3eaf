'use client';
/**
 * Brightness, contrast, gamma, invert and greyscale for the viewer: one SVG filter on the canvas the
 * tiles are drawn into (not on the damage layer or the measurements above it). `E` opens the panel,
 * `X` resets. Its buttons go into the parent's toolbar (a positioned element, which places the panel).
 */
import { useEffect, useId, useState } from 'react';
import type OpenSeadragon from 'openseadragon';
import { clampSetting, ENHANCEMENT_LIMITS, filterPrimitives, isIdentity, NO_ENHANCEMENT } from '../enhance.js';
import type { Enhancement } from '../enhance.js';
import { drawnCanvas } from '../osd/imageSpace.js';
import { useViewerKeys } from '../osd/useViewerKeys.js';

export interface EnhanceControlsProps {
  /** The viewer whose drawn image is enhanced. */
  viewer: OpenSeadragon.Viewer | null;
}

const NUMBERS: { key: keyof typeof ENHANCEMENT_LIMITS; label: string }[] = [
  { key: 'brightness', label: 'Brightness' },
  { key: 'contrast', label: 'Contrast' },
  { key: 'gamma', label: 'Gamma' },
];

/**
 * A number input that lets a value be typed through partial forms ("1.", "") and applies each
 * complete number, clamped; it shows the applied value again when it loses focus or is reset.
 */
function NumberField({
  label,
  value,
  min,
  max,
  onValue,
}: {
  label: string;
  value: number;
  min: number;
  max: number;
  onValue: (v: number) => void;
}) {
  const [text, setText] = useState(String(value));
  useEffect(() => setText((t) => (Number(t) === value ? t : String(value))), [value]);
  return (
    <label>
      {label}
      <input
        type="number"
        step={0.05}
        min={min}
        max={max}
        value={text}
        onChange={(e) => {
          setText(e.target.value);
          if (e.target.value.trim() !== '' && Number.isFinite(e.target.valueAsNumber)) onValue(e.target.valueAsNumber);
        }}
        onBlur={() => setText(String(value))}
      />
    </label>
  );
}

export function EnhanceControls({ viewer }: EnhanceControlsProps) {
  const [open, setOpen] = useState(false);
  const [settings, setSettings] = useState<Enhancement>(NO_ENHANCEMENT);
  // An id per viewer, usable in `url(#…)`.
  const filterId = `tessera-enhance-${useId().replace(/[^a-zA-Z0-9_-]/g, '')}`;
  const identity = isIdentity(settings);

  useEffect(() => {
    const canvas = viewer && drawnCanvas(viewer);
    if (!canvas) return;
    canvas.style.filter = identity ? '' : `url(#${filterId})`;
    return () => {
      canvas.style.filter = '';
    };
  }, [viewer, identity, filterId]);

  const reset = () => setSettings(NO_ENHANCEMENT);
  useViewerKeys(viewer, { e: () => setOpen((o) => !o), x: reset });

  const set = (patch: Partial<Enhancement>) => setSettings((s) => ({ ...s, ...patch }));
  return (
    <>
      <svg className="enhance-filter" width="0" height="0" aria-hidden="true" focusable="false">
        <filter id={filterId} colorInterpolationFilters="sRGB">
          {filterPrimitives(settings).map((step, i) => {
            const Tag = step.tag;
            return (
              // biome-ignore lint/suspicious/noArrayIndexKey: the steps come in a fixed order; a step's place is its identity.
              <Tag key={i} {...step.attrs}>
                {step.funcs?.map(({ tag: Func, ...attrs }) => {
                  const F = Func as 'feFuncR';
                  return <F key={Func} {...attrs} />;
                })}
              </Tag>
            );
          })}
        </filter>
      </svg>
      <button
        type="button"
        className="enhance-button"
        title="Brightness, contrast, gamma, invert, greyscale (E)"
        aria-expanded={open}
        onClick={() => setOpen((o) => !o)}
      >
        Enhance
      </button>
      {!identity && (
        <button type="button" title="Show the image as it is (X)" onClick={reset}>
          Reset
        </button>
      )}
      {open && (
        <fieldset
          className="enhance-panel"
          data-testid="enhance"
          data-brightness={settings.brightness}
          data-contrast={settings.contrast}
          data-gamma={settings.gamma}
          data-invert={String(settings.invert)}
          data-greyscale={String(settings.greyscale)}
        >
          <legend>Enhance</legend>
          {NUMBERS.map(({ key, label }) => (
            <NumberField
              key={key}
              label={label}
              value={settings[key]}
              min={ENHANCEMENT_LIMITS[key].min}
              max={ENHANCEMENT_LIMITS[key].max}
              onValue={(v) => set({ [key]: clampSetting(key, v) })}
            />
          ))}
          <label>
            <input type="checkbox" checked={settings.invert} onChange={(e) => set({ invert: e.target.checked })} />
            Invert
          </label>
          <label>
            <input type="checkbox" checked={settings.greyscale} onChange={(e) => set({ greyscale: e.target.checked })} />
            Greyscale
          </label>
          <button type="button" onClick={reset} disabled={identity}>
            Reset (X)
          </button>
        </fieldset>
      )}
    </>
  );
}
