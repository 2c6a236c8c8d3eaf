// Server processes a scenario starts itself: a fresh s3s-fs, and tile-store instances on it that can
// be stopped hard (SIGKILL) and started again on the same port and store. Loopback only.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { TILE_STORE, freePort } from './harness.mjs';

export const S3 = { key: 'tessera-e2e-key', secret: 'tessera-e2e-secret', bucket: 'tessera-e2e' };

function s3sFsBinary() {
  const candidates = [
    process.env.S3S_FS,
    ...(process.env.PATH ?? '').split(delimiter).map((d) => join(d, 's3s-fs')),
    join(homedir(), '.cargo/bin/s3s-fs'),
  ];
  const found = candidates.find((c) => c && existsSync(c));
  if (!found) throw new Error('s3s-fs not found: cargo install s3s-fs@0.14.1 --locked --features binary');
  return found;
}

/** Starts a process and waits until `ready()` resolves true; `stop()` ends it (SIGTERM, or the signal given). */
async function startProcess(name, command, args, env, ready) {
  let output = '';
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const stop = (signal = 'SIGTERM') =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', resolve);
      child.kill(signal);
    });
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}:\n${output}`);
    if (await ready().catch(() => false)) return { child, stop, log: () => output };
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop('SIGKILL');
  throw new Error(`${name} did not become ready:\n${output}`);
}

/** A fresh s3s-fs in `dir` on a free port, with one empty bucket; `bucketDir` holds its objects as files. */
export async function s3sFs(dir) {
  const data = join(dir, `s3s-fs-${Date.now()}`);
  mkdirSync(join(data, S3.bucket), { recursive: true });
  const port = await freePort();
  const args = ['--host', '127.0.0.1', '--port', String(port), '--access-key', S3.key, '--secret-key', S3.secret, data];
  // Any HTTP answer (403 to an unsigned request) means it is listening.
  const proc = await startProcess(
    's3s-fs',
    s3sFsBinary(),
    args,
    process.env,
    async () => (await fetch(`http://127.0.0.1:${port}/`)).status > 0,
  );
  return { endpoint: `http://127.0.0.1:${port}`, bucketDir: join(data, S3.bucket), ...proc };
}

/**
 * `tile-store serve` on `port` (a free one if not given) with `args` (store, CORS, auth), anonymous
 * writes on loopback unless `args` say otherwise. Start it again with the same port and arguments
 * to "restart" it.
 */
export async function tileStore(args, { port, env = {} } = {}) {
  port ??= await freePort();
  const url = `http://127.0.0.1:${port}`;
  const clean = { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn', ...env };
  // Nothing from the caller's environment decides who may write.
  for (const name of ['TILE_STORE_TOKENS', 'TILE_STORE_JWT_SECRET', 'TILE_STORE_REQUIRE_READ_TOKEN']) delete clean[name];
  const proc = await startProcess(
    'tile-store',
    TILE_STORE,
    ['serve', '--listen', `127.0.0.1:${port}`, ...args],
    clean,
    async () => (await fetch(`${url}/healthz`)).ok,
  );
  return { url, port, ...proc };
}

/** tile-store arguments and environment for the S3 store on `s3`. */
export function onS3(s3) {
  return {
    args: ['--store', 's3', '--s3-path-style'],
    env: {
      AWS_ENDPOINT_URL: s3.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: S3.key,
      AWS_SECRET_ACCESS_KEY: S3.secret,
      AWS_S3_BUCKET_NAME: S3.bucket,
    },
  };
}
