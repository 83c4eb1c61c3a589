// Starts the console. Trunk would inline this as a <script type="module">, which the edge's CSP
// (script-src 'self' 'wasm-unsafe-eval', no 'unsafe-inline') blocks; Trunk.toml's pattern_script
// puts the hashed file names on the <script> tag that loads this file instead. The names change
// with every build, this file does not, so it can be cached like any static file.
const tag = document.querySelector("script[data-tandem-js]");
const { default: init } = await import(tag.dataset.tandemJs);
await init({ module_or_path: tag.dataset.tandemWasm });
