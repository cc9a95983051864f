// Bundles the agent for devices: the entry dist/agent.cjs plus lazily loaded chunks in dist/chunks/,
// and dist/bosun-agent, the launcher that runs them (scripts/bosun-agent).
// Code splitting: every dynamic `import()` in the sources (the device API and fastify, kysely's
// Migrator, …) becomes a chunk that is read and evaluated only when that import runs, so rarely
// used code costs no memory until it is used. esbuild splits ESM output only; the split files are
// then turned into CommonJS (`import()` becoming `require()`), because an ESM entry makes Node load
// its ESM loader, ~1 MB of RSS the agent has no use for. Transports and features the agent never
// uses are replaced by stubs that throw if reached: docker-modem's ssh transport (ssh2, ~18 MB
// RSS), dockerode's buildkit session (grpc, protobufjs) and image builds (tar-fs). Modules that dependencies require at load but use
// only on paths the agent rarely or never takes are loaded on first use instead, and a few are
// replaced by smaller equivalents (`lazyRequires`, `replacedRequires`; the build fails when one of
// these rules matched nothing, see scripts/bundleRequireRules.mjs). better-sqlite3 stays
// external: it is a native addon loaded from node_modules.
// BENCHMARKS.md §3 has what each of these saves.
import fs from 'node:fs';
import path from 'node:path';
import { build, transform } from 'esbuild';
import { exactly, requireRules } from './bundleRequireRules.mjs';

// ssh transport; buildkit sessions; image build contexts packed from a folder (tar-fs with
// tar-stream, bl and readable-stream: the agent's one build, UniK's, hands buildImage a tar stream
// it packed itself, src/agent/unik/packDir.ts); fastify's default schema
// compilers (Ajv, fast-json-stringify: ~300 KB of source that would sit in the device API's chunk;
// the device API brings its own compilers, so fastify never requires these)
const unused = ['ssh2', '@grpc/grpc-js', '@grpc/proto-loader', 'protobufjs', 'tar-fs', '@fastify/ajv-compiler', '@fastify/fast-json-stringify-compiler'];

/**
 * Modules that a dependency requires at load but uses only on paths the agent rarely or never
 * takes: that `require()` gets a stand-in which loads the module on first use (property access or
 * call), so an idle agent never evaluates it. Only for modules used as namespaces (`mod.fn(…)`),
 * not destructured at load; each entry names the one importer it applies to.
 */
const lazyRequires = [
  // https://… engine hosts only (the agent talks to the engine over its unix socket); https loads tls
  { module: 'https', importer: /node_modules\/docker-modem\/lib\/http\.js$/ },
  // gzip of image build contexts packed from a folder (never: the UniK build passes a stream)
  { module: 'zlib', importer: /node_modules\/dockerode\/lib\/util\.js$/ },
  // executable subcommands (`bosun-agent foo` running bosun-agent-foo), which the agent has none of
  { module: 'node:child_process', importer: /node_modules\/commander\/lib\/command\.js$/ },
  // pino's log transports in worker threads (the agent logs to stdout): thread-stream loads worker_threads (~1.6 MB)
  { module: 'thread-stream', importer: /node_modules\/pino\/lib\/transport\.js$/ },
  // sonic-boom (pino's stdout writer) asserts only when a stream closes; assert costs ~1 MB at load
  { module: 'assert', importer: /node_modules\/sonic-boom\/index\.js$/ },
  // buildkit sessions (image builds, never run by the agent); crypto costs ~1 MB at load
  { module: 'crypto', importer: /node_modules\/dockerode\/lib\/session\.js$/ },
];

/** Other `require()`s (or, with `importKind`, imports) replaced by smaller equivalents, again per importer. */
const replacedRequires = [
  {
    // readable-stream 3 is a copy of Node 10's streams; docker-modem's HttpDuplex (the only user the
    // agent loads; it only inherits from `.Duplex`) gets Node's own, which the agent loads anyway.
    // (readable-stream's own switch for this, READABLE_STREAM=disable, throws on Node 20.)
    module: 'readable-stream',
    importer: /node_modules\/docker-modem\/lib\/http_duplex\.js$/,
    contents: `module.exports = require('stream');`,
  },
  {
    // pino asks whether it runs on the main thread (to flush on exit); the agent never starts a
    // worker thread, and loading worker_threads to ask costs ~1.6 MB
    module: 'worker_threads',
    importer: /node_modules\/pino\/lib\/tools\.js$/,
    contents: `module.exports = { isMainThread: true };`,
  },
  {
    // @noble/hashes reads globalThis.crypto at load (Node's WebCrypto, ~2 MB) for its randomBytes,
    // which the agent does not use: it only hashes (src/shared/sha256.ts)
    module: '@noble/hashes/crypto',
    importer: /node_modules\/@noble\/hashes\/esm\/utils\.js$/,
    importKind: 'import-statement',
    contents: `export const crypto = undefined;`,
  },
  {
    // docker-modem's debug('modem') logging: the debug package (and tty) only when DEBUG is set
    module: 'debug',
    importer: /node_modules\/docker-modem\/lib\/modem\.js$/,
    contents: `const off = Object.assign(() => {}, { enabled: false, namespace: 'modem' });
off.extend = () => off;
module.exports = process.env.DEBUG ? require('debug') : () => off;`,
  },
];

const REQUIRE_BANNER = "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);";

const esmDir = 'dist/.agent-esm';
// chunk names carry a content hash: drop the previous build's
for (const dir of ['dist/chunks', esmDir]) fs.rmSync(dir, { recursive: true, force: true });
for (const old of ['dist/agent.mjs', 'dist/agent.mjs.map']) fs.rmSync(old, { force: true });

const rules = requireRules(lazyRequires, replacedRequires);
const built = await build({
  entryPoints: { agent: 'src/agent/main.ts' },
  outdir: esmDir,
  entryNames: '[name]',
  chunkNames: 'chunks/[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  splitting: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  external: ['better-sqlite3'],
  // every chunk gets its own `require` (esbuild's require shim of a chunk looks for one in scope);
  // dropped again when the chunk becomes CommonJS, which has one
  banner: { js: REQUIRE_BANNER },
  plugins: [
    {
      name: 'stub-unused',
      setup(b) {
        const filter = exactly(unused);
        b.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'stub' }));
        b.onLoad({ filter: /.*/, namespace: 'stub' }, (args) => ({
          contents: `const fail = () => { throw new Error(${JSON.stringify(`${args.path} is not part of the agent bundle`)}); };
module.exports = new Proxy({}, { get: (_t, k) => (k === '__esModule' ? false : fail) });`,
          loader: 'js',
        }));
      },
    },
    rules.plugin,
  ],
  logLevel: 'warning',
  metafile: !!process.env.BUNDLE_META,
});
// a rule that matched nothing no longer saves what it was written for (a dependency moved the file or the require)
const unmatched = rules.unmatched();
if (unmatched.length) {
  console.error(
    `bundle-agent: ${unmatched.length} require rule(s) matched nothing; update them (scripts/bundle-agent.mjs) to the dependencies as they are now:`,
  );
  for (const u of unmatched) console.error(`  ${u}`);
  process.exit(1);
}

/** Each split ESM file as CommonJS, its imports of other chunks pointing at their `.cjs` names. */
async function toCommonJs(from, to) {
  let code = fs.readFileSync(from, 'utf8').replace(REQUIRE_BANNER, '');
  code = code.replace(/(["'])(\.\.?\/[^"']+?)\.mjs\1/g, '$1$2.cjs$1');
  const out = await transform(code, { format: 'cjs', platform: 'node', target: 'node20', supported: { 'dynamic-import': false }, minify: true });
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.writeFileSync(to, out.code);
}

for (const file of fs.readdirSync(esmDir, { recursive: true })) {
  if (file.endsWith('.mjs')) await toCommonJs(path.join(esmDir, file), path.join('dist', file.replace(/\.mjs$/, '.cjs')));
}
fs.rmSync(esmDir, { recursive: true, force: true });
// BUNDLE_META=<file>: esbuild's metafile (what each chunk holds, by input), for memory work
if (process.env.BUNDLE_META) fs.writeFileSync(process.env.BUNDLE_META, JSON.stringify(built.metafile));

// the launcher devices run: the bundle under the node flags and malloc settings its memory is measured with
fs.copyFileSync('scripts/bosun-agent', 'dist/bosun-agent');
fs.chmodSync('dist/bosun-agent', 0o755);
