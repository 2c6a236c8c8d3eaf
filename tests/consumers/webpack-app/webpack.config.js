// A plain webpack 5 set-up: nothing here is specific to Tessera.
const path = require('node:path');

module.exports = {
  mode: 'production',
  entry: './src/index.js',
  output: { path: path.resolve(__dirname, 'dist'), filename: 'main.js', clean: true },
  module: { rules: [{ test: /\.css$/, use: ['style-loader', 'css-loader'] }] },
  // Two images of OpenSeadragon and the wasm module are bigger than webpack's 244 KiB hint.
  performance: { hints: false },
};
