// Hostile files in the worker, in Chromium: a representative few of the generated corpus
// (tiler-wasm/tests/common/corpus.rs, written by the `hostile_corpus` example). Each ends in
// data-state="error" with the expected code and a message on the page, and the next image
// still loads in the same page; the degenerate 1×65000 image tiles.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeImages, QUAD } from './images.mjs';
import { ARTIFACTS, ROOT, setup, waitForState } from './harness.mjs';

/** Writes the corpus into `dir` with the example binary (built by `cargo test --all-targets`). */
function writeCorpus(dir) {
  const bin = join(ROOT, 'target/release/examples/hostile_corpus');
  if (existsSync(bin)) execFileSync(bin, [dir], { stdio: 'inherit' });
  else {
    execFileSync('cargo', ['run', '--release', '-q', '-p', 'tiler-wasm', '--example', 'hostile_corpus', '--', dir], {
      cwd: ROOT,
      stdio: 'inherit',
    });
  }
  return JSON.parse(readFileSync(join(dir, 'corpus.json'), 'utf8'));
}

let t;
let corpus;
before(async () => {
  t = await setup('hostile', (dir) => {
    corpus = writeCorpus(dir).filter((c) => c.e2e);
    return makeImages(dir);
  });
});
after(async () => t?.close());

test('the corpus has a representative set for the browser', () => {
  assert.ok(corpus.filter((c) => c.expect === 'error').length >= 6, JSON.stringify(corpus));
  assert.ok(corpus.some((c) => c.expect === 'tiles'));
});

test('each hostile file is a typed error on the page, and the next image loads', async () => {
  for (const c of corpus.filter((c) => c.expect === 'error')) {
    await t.open({ src: `/e2e/${c.name}` });
    const attrs = await waitForState(t.page, ['ready', 'error'], 60_000);
    await t.page.screenshot({ path: join(ARTIFACTS, `hostile-${c.name}.png`) });
    assert.equal(attrs['data-state'], 'error', `${c.name}: expected an error`);
    assert.ok(c.codes.includes(attrs['data-error-code']), `${c.name}: ${attrs['data-error-code']} ${attrs['data-error']}`);
    assert.ok(attrs['data-error'].length > 10, `${c.name}: ${attrs['data-error']}`);
    // The person sees the same message.
    const shown = await t.page.getByRole('alert').first().innerText();
    assert.ok(shown.includes(attrs['data-error'].slice(0, 30)), `${c.name}: shown ${shown}`);

    await t.page.getByLabel('Image URL').fill(`/e2e/${t.files.quadrants}`);
    await t.page.getByRole('button', { name: 'Open', exact: true }).click();
    await waitForState(t.page, ['loading', 'ready']);
    const next = await waitForState(t.page, ['ready', 'error']);
    assert.equal(next['data-state'], 'ready', `after ${c.name}, the next image must load: ${next['data-error']}`);
    assert.equal(Number(next['data-width']), QUAD.width);
  }
});

test('a 1×65000 image tiles', async () => {
  for (const c of corpus.filter((c) => c.expect === 'tiles')) {
    await t.open({ src: `/e2e/${c.name}` });
    const attrs = await waitForState(t.page, ['ready', 'error'], 60_000);
    assert.equal(attrs['data-state'], 'ready', `${c.name}: ${attrs['data-error']}`);
    const [w, h] = c.name.replace(/\..*$/, '').split('x').map(Number);
    assert.deepEqual([Number(attrs['data-width']), Number(attrs['data-height'])], [w, h]);
  }
});
