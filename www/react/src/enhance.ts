/**
 * Display enhancement of the image (not of the pyramid): brightness, contrast, gamma, invert and
 * greyscale, as one SVG filter applied to the drawn tiles, so nothing is tiled again and the settings
 * hold at every zoom and pan. Each step is a plain function of the sRGB value, in this order:
 * greyscale, brightness, contrast, gamma, invert.
 */

/** The enhancement settings; `NO_ENHANCEMENT` shows the image as it is. */
export interface Enhancement {
  /** Multiplies every channel (1: unchanged). */
  brightness: number;
  /** Scales the distance from mid-grey (1: unchanged). */
  contrast: number;
  /** Output = input^(1/gamma) on 0–1 values (1: unchanged; above 1 lifts dark tones). */
  gamma: number;
  /** 1 − value, last. */
  invert: boolean;
  /** Rec. 709 luma in every channel, first. */
  greyscale: boolean;
}

export const NO_ENHANCEMENT: Enhancement = { brightness: 1, contrast: 1, gamma: 1, invert: false, greyscale: false };

/** The range each number may take (inputs are clamped to it). */
export const ENHANCEMENT_LIMITS = {
  brightness: { min: 0, max: 4 },
  contrast: { min: 0, max: 4 },
  gamma: { min: 0.1, max: 5 },
} as const;

/** Rec. 709 luma weights, as SVG's `feColorMatrix type="saturate" values="0"` uses. */
const LUMA = [0.2126, 0.7152, 0.0722] as const;

/** `value` clamped into the limits of setting `key`; the default for a non-number. */
export function clampSetting(key: keyof typeof ENHANCEMENT_LIMITS, value: number): number {
  const { min, max } = ENHANCEMENT_LIMITS[key];
  return Number.isFinite(value) ? Math.min(Math.max(value, min), max) : NO_ENHANCEMENT[key];
}

/** Whether `e` changes nothing. */
export const isIdentity = (e: Enhancement) => e.brightness === 1 && e.contrast === 1 && e.gamma === 1 && !e.invert && !e.greyscale;

/**
 * What the filter makes of one sRGB pixel (0–255 per channel): the reference the browser's
 * rendering is tested against.
 */
export function enhancePixel(rgb: readonly [number, number, number], e: Enhancement): [number, number, number] {
  let v = rgb.map((c) => c / 255);
  if (e.greyscale) {
    const y = LUMA[0] * v[0] + LUMA[1] * v[1] + LUMA[2] * v[2];
    v = [y, y, y];
  }
  const clamp = (x: number) => Math.min(Math.max(x, 0), 1);
  v = v.map((x) => clamp(x * e.brightness));
  v = v.map((x) => clamp((x - 0.5) * e.contrast + 0.5));
  v = v.map((x) => x ** (1 / e.gamma));
  if (e.invert) v = v.map((x) => 1 - x);
  return v.map((x) => Math.round(x * 255)) as [number, number, number];
}

/** The SVG filter primitives (inside `<filter color-interpolation-filters="sRGB">`) for `e`. */
export function filterPrimitives(
  e: Enhancement,
): { tag: 'feColorMatrix' | 'feComponentTransfer'; attrs: Record<string, string>; funcs?: Record<string, string>[] }[] {
  const steps: ReturnType<typeof filterPrimitives> = [];
  const channels = (attrs: Record<string, string>) => ['feFuncR', 'feFuncG', 'feFuncB'].map((tag) => ({ tag, ...attrs }));
  if (e.greyscale) steps.push({ tag: 'feColorMatrix', attrs: { type: 'saturate', values: '0' } });
  if (e.brightness !== 1)
    steps.push({ tag: 'feComponentTransfer', attrs: {}, funcs: channels({ type: 'linear', slope: String(e.brightness), intercept: '0' }) });
  if (e.contrast !== 1) {
    const intercept = 0.5 - 0.5 * e.contrast;
    steps.push({
      tag: 'feComponentTransfer',
      attrs: {},
      funcs: channels({ type: 'linear', slope: String(e.contrast), intercept: String(intercept) }),
    });
  }
  if (e.gamma !== 1) {
    steps.push({
      tag: 'feComponentTransfer',
      attrs: {},
      funcs: channels({ type: 'gamma', amplitude: '1', exponent: String(1 / e.gamma), offset: '0' }),
    });
  }
  if (e.invert) steps.push({ tag: 'feComponentTransfer', attrs: {}, funcs: channels({ type: 'table', tableValues: '1 0' }) });
  return steps;
}
