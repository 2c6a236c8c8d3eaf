#!/usr/bin/env bash
# `make packages`: npm tarballs of @tessera/tiler-wasm and @tessera/react in dist/npm/, ready to
# publish, and their sizes. Expects tiler-wasm/pkg (scripts/build-wasm.sh) and www/react/dist
# (`npm run build -w @tessera/react`) to be built.
# One version for both: tiler-wasm's crate version, stamped into both package.json files here.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/dist/npm"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/tiler-wasm/Cargo.toml" | head -n1)"
pkg="$root/tiler-wasm/pkg"
react="$root/www/react"
[ -f "$pkg/package.json" ] || { echo "no $pkg; run scripts/build-wasm.sh" >&2; exit 1; }
[ -f "$react/dist/index.js" ] || { echo "no $react/dist; run npm run build -w @tessera/react in www" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out"

# @tessera/tiler-wasm: build-wasm.sh wrote its package.json with the crate version.
node -e '
  const p = require(process.argv[1] + "/package.json");
  if (p.version !== process.argv[2]) throw new Error(`tiler-wasm/pkg is ${p.version}, the crate ${process.argv[2]}: rebuild it`);
' "$pkg" "$version"
(cd "$pkg" && npm pack --pack-destination "$out" --loglevel=error >/dev/null)

# @tessera/react: a staging copy whose package.json has the version and depends on the published
# @tessera/tiler-wasm of the same version instead of the repository's file: link.
stage="$root/target/npm-stage/react"
rm -rf "$stage"
mkdir -p "$stage"
cp -R "$react/dist" "$react/README.md" "$root/LICENSE" "$stage/"
node -e '
  const fs = require("fs");
  const [src, dst, version] = process.argv.slice(1);
  const p = JSON.parse(fs.readFileSync(src, "utf8"));
  p.version = version;
  p.dependencies = { ...p.dependencies, "@tessera/tiler-wasm": version };
  delete p.devDependencies;
  delete p.scripts;
  fs.writeFileSync(dst, JSON.stringify(p, null, 2) + "\n");
' "$react/package.json" "$stage/package.json" "$version"
(cd "$stage" && npm pack --pack-destination "$out" --loglevel=error >/dev/null)

# Nothing in a tarball may point back into this repository.
check="$root/target/npm-stage/check"
for tgz in "$out"/*.tgz; do
  rm -rf "$check" && mkdir -p "$check" && tar -xzf "$tgz" -C "$check"
  if grep -r -n -E '"file:|\.\./\.\./|'"$root"'|tiler-wasm/pkg|www/react' --exclude='*.wasm' "$check" >&2; then
    echo "$tgz refers to this repository (above)" >&2
    exit 1
  fi
done

# Sizes, measured here; the README quotes them.
node - "$out" "$version" "$pkg" "$react/dist" <<'JS' | tee "$out/sizes.txt"
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const [out, version, pkg, dist] = process.argv.slice(2);
const gz = (b) => zlib.gzipSync(b, { level: 9 }).length;
const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
const files = (dir) => fs.readdirSync(dir, { recursive: true }).map((f) => path.join(dir, f)).filter((f) => fs.statSync(f).isFile());
const sum = (list) => list.reduce((a, f) => { const b = fs.readFileSync(f); return { raw: a.raw + b.length, gz: a.gz + gz(b) }; }, { raw: 0, gz: 0 });
const wasm = fs.readFileSync(path.join(pkg, 'tiler_wasm_bg.wasm'));
const glue = sum([path.join(pkg, 'tiler_wasm.js')]);
const js = files(dist).filter((f) => f.endsWith('.js'));
const workers = sum(js.filter((f) => f.includes(`${path.sep}worker${path.sep}`)));
const all = sum(js);
const css = sum(files(dist).filter((f) => f.endsWith('.css')));
const tgz = (name) => fs.statSync(path.join(out, name)).size;
console.log(`packed sizes, version ${version} (gzip -9)`);
console.log(`  @tessera/tiler-wasm  tiler_wasm_bg.wasm ${kb(wasm.length)} raw, ${kb(gz(wasm))} gzip; JS glue ${kb(glue.raw)} raw, ${kb(glue.gz)} gzip; tarball ${kb(tgz(`tessera-tiler-wasm-${version}.tgz`))}`);
console.log(`  @tessera/react       JS ${kb(all.raw)} raw, ${kb(all.gz)} gzip in ${js.length} files (of which worker/: client and both workers, ${kb(workers.raw)} raw, ${kb(workers.gz)} gzip); styles.css ${kb(css.raw)} raw; tarball ${kb(tgz(`tessera-react-${version}.tgz`))}`);
JS
ls -l "$out"
