// Comparing two inspections: image B is image A at 0.8× shifted by (100, 60) and its colours inverted
// (so a screen pixel tells which image it comes from), with the same damage layer moved alike. The alignment maths on fixed vectors; then in Chromium, aligned (from the
// address, or by clicking two pairs of points), both viewers keep the same features at the same screen
// places within 2 px while one is zoomed or dragged.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { damageLayer, QUAD, QUADRANTS } from './images.mjs';
import { near, pixel, toScreen } from './harness.mjs';
import { setupWorkspace } from './workspace.mjs';
import { alignmentFrom, alignPoint, formatAlignment, invertAlignment, parseAlignment } from '../../www/react/dist/align.js';

const SHIFT = { scale: 0.8, rotation: 0, tx: 100, ty: 60 };

test('alignments from two pairs of points, on fixed vectors', () => {
  const close = (got, want, what) => {
    for (const k of Object.keys(want)) assert.ok(Math.abs(got[k] - want[k]) < 1e-9, `${what} ${k}: ${got[k]} ≠ ${want[k]}`);
  };
  close(alignmentFrom([0, 0], [10, 0], [100, 60], [108, 60]), SHIFT, 'scale and shift');
  // A quarter turn: (1, 0) → (0, 1) in image coordinates (y down), doubled, then shifted.
  close(alignmentFrom([0, 0], [1, 0], [5, 5], [5, 7]), { scale: 2, rotation: Math.PI / 2, tx: 5, ty: 5 }, 'turn');
  assert.deepEqual(
    alignPoint({ scale: 2, rotation: Math.PI / 2, tx: 5, ty: 5 }, [1, 0]).map((x) => Math.round(x * 1e9) / 1e9),
    [5, 7],
  );
  const back = invertAlignment({ scale: 2, rotation: 0.3, tx: 5, ty: -7 });
  const round = alignPoint(back, alignPoint({ scale: 2, rotation: 0.3, tx: 5, ty: -7 }, [123, 45]));
  assert.ok(Math.hypot(round[0] - 123, round[1] - 45) < 1e-9, `inverse: ${round}`);
  assert.throws(() => alignmentFrom([1, 1], [1.5, 1], [0, 0], [9, 9]), /a pixel apart/);
  assert.equal(formatAlignment(SHIFT), '0.8,0,100,60');
  assert.deepEqual(parseAlignment('0.8,0,100,60'), SHIFT);
  for (const bad of [null, '', '0,0,1,1', '-1,0,0,0', '1,2,3', '1,2,3,x', 'NaN,0,0,0'])
    assert.equal(parseAlignment(bad), null, String(bad));
});

let t;
before(async () => {
  t = await setupWorkspace('compare', (dir) => {
    const a = join(dir, 'quadrants.jpg');
    execFileSync('vips', ['resize', a, join(dir, 'small.v'), '0.8']);
    execFileSync('vips', ['embed', join(dir, 'small.v'), join(dir, 'shifted.v'), '100', '60', '1800', '1300']);
    execFileSync('vips', ['invert', join(dir, 'shifted.v'), `${join(dir, 'later.jpg')}[Q=95,strip]`]);
    const layer = damageLayer();
    const moved = JSON.parse(JSON.stringify(layer), (_key, value) =>
      Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === 'number') ? alignPoint(SHIFT, value) : value,
    );
    writeFileSync(join(dir, 'later.json'), JSON.stringify(moved));
    return { later: 'later.jpg', laterDamage: 'later.json' };
  });
});
after(async () => t?.close());

const viewer = (name) => t.page.locator(`[data-testid="viewer"][data-viewer="${name}"]`);

/** Waits until both viewers are ready, still and fully drawn. */
async function settled() {
  await t.page.waitForFunction(
    () =>
      [...document.querySelectorAll('[data-testid="viewer"]')].every(
        (v) =>
          v.getAttribute('data-state') === 'ready' &&
          v.getAttribute('data-animating') === 'false' &&
          v.getAttribute('data-fully-loaded') === 'true',
      ) && document.querySelectorAll('[data-testid="viewer"]').length === 2,
    null,
    { timeout: 120_000, polling: 100 },
  );
  await t.page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

/** Runs `action` (a move of viewer `name`) and waits until that move has ended and both viewers are drawn. */
async function moved(name, action) {
  const before = Number(await viewer(name).getAttribute('data-animations'));
  await action();
  await t.page.waitForFunction(
    ([n, k]) => Number(document.querySelector(`[data-testid="viewer"][data-viewer="${n}"]`)?.getAttribute('data-animations')) > k,
    [name, before],
    { timeout: 30_000, polling: 50 },
  );
  await settled();
}

const zoomInMain = () => moved('main', () => viewer('main').locator('..').getByRole('button', { name: 'Zoom in' }).click());

/** Feature `index`'s on-screen box in viewer `name`, relative to that viewer. */
const boxIn = (name, index) =>
  t.page.evaluate(
    ([n, i]) => {
      const v = document.querySelector(`[data-testid="viewer"][data-viewer="${n}"]`);
      const r = v.getBoundingClientRect();
      const b = v
        .querySelector(`[data-testid="vector-feature"][data-index="${i}"] path, [data-testid="vector-feature"][data-index="${i}"] circle`)
        .getBoundingClientRect();
      return { x: b.x - r.x, y: b.y - r.y, width: b.width, height: b.height };
    },
    [name, index],
  );

async function assertSameScreenPlaces(what, tolerance = 2) {
  for (const i of [0, 1, 3]) {
    const [a, b] = [await boxIn('main', i), await boxIn('compare', i)];
    for (const k of ['x', 'y', 'width', 'height']) {
      assert.ok(Math.abs(a[k] - b[k]) <= tolerance, `${what}, feature ${i} ${k}: main ${a[k].toFixed(1)}, compare ${b[k].toFixed(1)}`);
    }
  }
}

/** Clicks image pixel (x, y) in viewer `name`, through where its damage layer's overlay lies. */
async function clickImage(name, width, [x, y]) {
  const host = await viewer(name).locator('[data-testid="vector-overlay"]').boundingBox();
  await t.page.mouse.click(host.x + (x / width) * host.width, host.y + (y / width) * host.width);
}

async function open(params) {
  await t.open({
    src: `/e2e/${t.files.quadrants}`,
    vectorSrc: `/e2e/${t.files.damage}`,
    compareSrc: `/e2e/${t.files.later}`,
    compareVectorSrc: `/e2e/${t.files.laterDamage}`,
    ...params,
  });
  await t.page.locator('[data-viewer="compare"] [data-testid="vector-feature"]').first().waitFor({ timeout: 120_000 });
  await settled();
}

test('aligned from the address: the same features at the same screen places, zoomed and dragged', async () => {
  await open({ alignment: '0.8,0,100,60' });
  await assertSameScreenPlaces('home');
  await zoomInMain();
  await assertSameScreenPlaces('main zoomed in');
  // The second viewer leads too: a drag in it moves the first.
  const b = await viewer('compare').boundingBox();
  await moved('compare', async () => {
    await t.page.mouse.move(b.x + b.width / 2, b.y + b.height / 2);
    await t.page.mouse.down();
    await t.page.mouse.move(b.x + b.width / 2 - 120, b.y + b.height / 2 - 40, { steps: 10 });
    await t.page.mouse.up();
  });
  await assertSameScreenPlaces('compare dragged');
});

test('Align: two pairs of clicked points set the alignment, and the viewers follow it', async () => {
  await open({});
  const compare = t.page.getByTestId('compare');
  assert.equal(await compare.getAttribute('data-aligned'), 'false');
  await compare.getByRole('button', { name: 'Align' }).click();
  const laterWidth = 1800;
  for (const [a] of [[[200, 200]], [[1800, 600]]]) {
    await clickImage('main', QUAD.width, a);
    await clickImage('compare', laterWidth, alignPoint(SHIFT, a));
  }
  await t.page.locator('[data-testid="compare"][data-aligned="true"]').waitFor();
  const made = parseAlignment(await compare.getAttribute('data-alignment'));
  assert.ok(Math.abs(made.scale - 0.8) < 0.008, `scale ${made.scale}`);
  assert.ok(Math.abs(made.rotation) < 0.01, `rotation ${made.rotation}`);
  assert.ok(Math.hypot(made.tx - 100, made.ty - 60) < 8, `shift ${made.tx}, ${made.ty}`);
  // The address keeps it, and the viewers follow it.
  assert.equal(new URL(t.page.url()).searchParams.get('alignment'), formatAlignment(made));
  await settled();
  await assertSameScreenPlaces('after Align');
  await zoomInMain();
  await assertSameScreenPlaces('after Align, zoomed in');
});

test('Curtain: the second inspection over the first, right of a divider the arrow keys move', async () => {
  await open({ alignment: '0.8,0,100,60' });
  await moved('compare', () => t.page.getByTestId('compare').getByRole('button', { name: 'Curtain' }).click());
  const frame = await viewer('main').boundingBox();
  assert.deepEqual(await viewer('compare').boundingBox(), frame, 'laid over the first');
  await assertSameScreenPlaces('under the curtain');
  const inverted = (rgb) => rgb.map((v) => 255 - v);
  const shot = async () => {
    await t.page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    return (await import('pngjs')).PNG.sync.read(await t.page.screenshot({ clip: frame }));
  };
  // The divider at the middle: the top-left quadrant is the first image's, the top-right the second's.
  const left = toScreen(frame, QUAD, 1, 500, 375);
  const right = toScreen(frame, QUAD, 1, 1500, 375);
  let png = await shot();
  assert.ok(near(pixel(png, left.x, left.y), QUADRANTS.topLeft, 30), `left of the divider: ${pixel(png, left.x, left.y)}`);
  assert.ok(near(pixel(png, right.x, right.y), inverted(QUADRANTS.topRight), 30), `right of it: ${pixel(png, right.x, right.y)}`);
  // Moved right to 90% with the keyboard, the top-right quadrant is the first image's too.
  await t.page.getByTestId('curtain-divider').focus();
  for (let i = 0; i < 8; i++) await t.page.keyboard.press('ArrowRight');
  assert.equal(await t.page.getByTestId('curtain-divider').getAttribute('aria-valuenow'), '90');
  png = await shot();
  assert.ok(near(pixel(png, right.x, right.y), QUADRANTS.topRight, 30), `after the move: ${pixel(png, right.x, right.y)}`);
});
