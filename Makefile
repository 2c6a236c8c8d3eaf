# The two commands a newcomer needs are `make run` and `make test`; each installs what it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo
LISTEN ?= 127.0.0.1:8080
DATA_DIR ?= data

.PHONY: help run test wasm web packages server bench bench-store bench-browser bench-layers bench-server bench-reuse bench-gigapixel lint fmt clean fuzz load

help:
	@echo "make run    build everything and serve the web app with a sample image on http://$(LISTEN)/"
	@echo "make test   install what the tests need and run every test"
	@echo "make packages  npm tarballs of @tessera/tiler-wasm and @tessera/react in dist/npm/, with their sizes"
	@echo "make bench  Tessera (native and in Chromium) against vips dzsave and sharp, one table"
	@echo "make bench-store  tile-store ingest and GETs on disk and S3 (s3s-fs), with wrk"
	@echo "make bench-browser  Tessera in Chromium against OpenSeadragon type:'image' and vips dzsave"
	@echo "make bench-server  POST /pyramids by S3 key (s3s-fs), request to ready, against vips dzsave"
	@echo "make bench-layers  a 10,000-feature damage layer: first draw and frame times, canvas against SVG"
	@echo "make bench-gigapixel  a generated 2-gigapixel tiled BigTIFF: tile-store tile against vips dzsave, time and peak RSS"
	@echo "make bench-reuse  first view of a pyramid reused from tile-store against tiling it in the browser; upload time"
	@echo "make lint   fmt check, clippy (native and wasm32), Biome (format and lint of the TS/JS), tsc"
	@echo "make fmt    rustfmt and Biome's formatting and safe fixes"
	@echo "make fuzz   every fuzz target for FUZZ_SECONDS (default 1200) each"
	@echo "make load   64 clients against tile-store on s3s-fs for LOAD_SECONDS (default 60)"

## The main job: tile-store on the local-disk store, serving the web app and a sample image.
## `store=/` makes the page use this same tile-store: the first open tiles and saves, the next reuses.
run: server web
	@echo "Open http://$(LISTEN)/?src=/samples/bridge-deck.jpg&vectorSrc=/samples/bridge-deck.json&store=/"
	./target/release/tile-store serve --listen $(LISTEN) --data-dir $(DATA_DIR) --web-dir www/demo/dist

## Every test: Rust unit, golden and integration tests, wasm tests, end-to-end tests in Chromium
## (the demo, and the Vite and webpack apps in tests/consumers/ installing dist/npm/*.tgz).
## Tests build in release: golden images decode fast, and `cargo test` leaves target/release/tile-store,
## the binary the end-to-end tests run (a separate `cargo build` would rebuild with other features).
## scripts/test.sh runs the stages and prints the time each took.
test:
	CARGO=$(CARGO) scripts/test.sh

wasm:
	scripts/setup.sh run
	scripts/build-wasm.sh

## The npm workspace www/: the @tessera/react library (www/react), then the demo app using it (www/demo).
web: wasm
	scripts/setup.sh npm www
	cd www && npm run build

## dist/npm/tessera-tiler-wasm-X.Y.Z.tgz and tessera-react-X.Y.Z.tgz (`npm pack`), one version: the crate's.
packages: wasm
	scripts/setup.sh npm www
	cd www && npm run build -w @tessera/react
	scripts/pack-npm.sh

## The release binary, rebuilt only when a Rust source or manifest is newer: `cargo test --release`
## (make test) leaves a valid one built with the tests' feature set, which a plain `cargo build`
## would otherwise compile again (about 2 min) before `make run` or a benchmark.
SERVER_BIN := target/release/tile-store
RUST_INPUTS := Cargo.toml Cargo.lock tile-store/Cargo.toml tiler-wasm/Cargo.toml \
	$(shell find tile-store/src tiler-wasm/src -name '*.rs' 2>/dev/null)

server: $(SERVER_BIN)

$(SERVER_BIN): $(RUST_INPUTS)
	$(CARGO) build --release -p tile-store
	@touch $@

## One table: Tessera native and in Chromium, vips dzsave and sharp; `BENCH_ARGS=--with-400` adds 400 MP.
bench: server web
	scripts/setup.sh npm bench
	scripts/setup.sh npm tests/e2e
	python3 bench/bench.py $(BENCH_ARGS)

bench-store: server wasm
	python3 bench/store.py

bench-server: server
	python3 bench/server.py

bench-browser: server web
	scripts/setup.sh npm tests/e2e
	node bench/browser.mjs
	node bench/layers.mjs

bench-layers: server web
	scripts/setup.sh npm tests/e2e
	node bench/layers.mjs

## Not in make test (minutes, and gigabytes in bench/out): the memory bound of streamed TIFF tiling.
bench-gigapixel: server
	python3 bench/gigapixel.py $(BENCH_ARGS)

bench-reuse: server web
	scripts/setup.sh npm tests/e2e
	node bench/reuse.mjs

## Long runs behind a flag: fuzzing, and the load test for a minute (make test runs both briefly).
fuzz:
	scripts/setup.sh test
	scripts/fuzz.sh $${FUZZ_SECONDS:-1200}

load:
	scripts/setup.sh test
	TESSERA_LOAD_SECS=$${LOAD_SECONDS:-60} $(CARGO) test --release -p tile-store --test load -- --nocapture

## Formats Rust (rustfmt) and TypeScript/JavaScript (Biome, biome.jsonc), applying Biome's safe fixes.
fmt:
	$(CARGO) fmt --all
	scripts/setup.sh npm www
	www/node_modules/.bin/biome check --write

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p tiler-wasm --target wasm32-unknown-unknown --no-default-features --all-targets -- -D warnings
	$(CARGO) fmt --manifest-path bench/jpeg-rows/Cargo.toml -- --check
	$(CARGO) clippy --manifest-path bench/jpeg-rows/Cargo.toml -- -D warnings
	scripts/setup.sh npm www
	www/node_modules/.bin/biome check
	cd www && npm run typecheck

clean:
	$(CARGO) clean
	rm -rf www/demo/dist www/react/dist tiler-wasm/pkg dist target/npm-stage tests/artifacts
