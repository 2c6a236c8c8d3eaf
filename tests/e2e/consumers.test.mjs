// The published packages in apps that are not ours: tests/consumers/{vite-app,webpack-app} install
// dist/npm/*.tgz (`make packages`) with react, react-dom and openseadragon from the registry, build,
// and are served on 127.0.0.1. Each renders <Workspace src vectorSrc />; the image checks run on both.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { damageLayer, makeImages, QUAD } from './images.mjs';
import { assertOrientedUpright, near, pixel, ROOT, setup, toScreen, waitForSettled, waitForState } from './harness.mjs';

const TARBALLS = join(ROOT, 'dist/npm');

function tarballs() {
  const found = existsSync(TARBALLS) ? readdirSync(TARBALLS).filter((f) => f.endsWith('.tgz')) : [];
  for (const name of ['tessera-tiler-wasm-', 'tessera-react-']) {
    assert.ok(
      found.some((f) => f.startsWith(name)),
      `no ${name}*.tgz in ${TARBALLS}; run \`make packages\``,
    );
  }
  return found.map((f) => join(TARBALLS, f));
}

function run(cmd, args, cwd) {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}:\n${e.stdout}\n${e.stderr}`);
  }
}

/** A temporary copy of the fixture with the tarballs installed, built; returns its directory. */
function buildConsumer(app) {
  const work = mkdtempSync(join(tmpdir(), `tessera-consumer-${app}-`));
  cpSync(join(ROOT, 'tests/consumers', app), work, {
    recursive: true,
    filter: (src) => !/[\\/](node_modules|dist)$/.test(src),
  });
  run(
    'npm',
    ['install', '--no-save', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs(), 'react', 'react-dom', 'openseadragon'],
    work,
  );
  run('npm', ['run', 'build'], work);
  return work;
}

for (const app of ['vite-app', 'webpack-app']) {
  describe(app, () => {
    let t;
    let work;
    before(async () => {
      work = buildConsumer(app);
      t = await setup(
        `consumer-${app}`,
        (dir) => {
          writeFileSync(join(dir, 'damage.json'), JSON.stringify(damageLayer()));
          return { ...makeImages(dir), damage: 'damage.json' };
        },
        { dist: join(work, 'dist') },
      );
    });
    after(async () => {
      await t?.close();
      if (work) rmSync(work, { recursive: true, force: true });
    });

    test('EXIF orientation 6 is upright at its size, quadrant colours', () => assertOrientedUpright(t));

    test('the vector overlay is drawn over the image', async () => {
      await t.open({ src: `/e2e/${t.files.quadrants}`, vectorSrc: `/e2e/${t.files.damage}` });
      const attrs = await waitForState(t.page, ['ready', 'error']);
      assert.equal(attrs['data-state'], 'ready', attrs['data-error']);
      assert.equal(Number(attrs['data-width']), QUAD.width);
      await t.page.locator('[data-testid="vector-feature"]').first().waitFor();
      await waitForSettled(t.page);
      assert.equal(await t.page.locator('[data-testid="vector-feature"]').count(), 4);
      // The polygon (200,200)-(700,500)'s top edge is stroked in the damage colour (styles.css applies).
      const box = await t.page.getByTestId('viewer').boundingBox();
      const shot = await t.shot('overlay');
      const edge = toScreen(box, QUAD, 1, 450, 200);
      assert.ok(near(pixel(shot.png, edge.x, edge.y), [255, 45, 85], 40), `stroke on the polygon's top edge; see ${shot.path}`);
      assert.equal(await t.page.getByTestId('damage-list').locator('li').count(), 4);
    });

    test('a missing image ends in data-state="error" with its HTTP status', async () => {
      await t.open({ src: `${t.withCors.url}/missing.jpg` });
      const attrs = await waitForState(t.page, ['ready', 'error']);
      assert.equal(attrs['data-state'], 'error');
      assert.equal(attrs['data-error-code'], 'http', attrs['data-error']);
      assert.match(attrs['data-error'], /HTTP 404/);
    });

    test('workers.wasmUrl is where the workers load the module from', async () => {
      // The app passes ?wasmUrl= on; a URL that is not a wasm module must fail the image.
      await t.open({ src: `/e2e/${t.files.oriented}`, wasmUrl: `${t.withCors.url}/missing.wasm` });
      const attrs = await waitForState(t.page, ['ready', 'error']);
      assert.equal(attrs['data-state'], 'error', 'the image loaded: the wasmUrl was ignored');
      assert.equal(attrs['data-error-code'], 'wasm_load', attrs['data-error']);
    });

    if (app === 'vite-app') {
      test('@tessera/react imports on a server (no DOM) without throwing', () => {
        const out = run(
          'node',
          [
            '--input-type=module',
            '-e',
            "const m = await import('@tessera/react'); console.log(typeof m.Workspace, typeof m.useTilingImage, typeof m.TileStoreClient)",
          ],
          work,
        );
        assert.equal(out.trim(), 'function function function');
      });
    }
  });
}
