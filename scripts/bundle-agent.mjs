// Bundles the agent into one ESM file (dist/agent.mjs) for devices. Transports and features the
// agent never uses are replaced by stubs that throw if reached: docker-modem's ssh transport
// (ssh2, ~18 MB RSS) and dockerode's buildkit session (grpc, protobufjs).
// better-sqlite3 stays external: it is a native addon loaded from node_modules.
import { build } from 'esbuild';

const unused = ['ssh2', '@grpc/grpc-js', '@grpc/proto-loader', 'protobufjs'];

await build({
  entryPoints: ['src/agent/main.ts'],
  outfile: 'dist/agent.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  sourcemap: 'linked',
  external: ['better-sqlite3'],
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  plugins: [
    {
      name: 'stub-unused',
      setup(b) {
        const filter = new RegExp(`^(${unused.map((m) => m.replace(/[/.]/g, '\\$&')).join('|')})$`);
        b.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'stub' }));
        b.onLoad({ filter: /.*/, namespace: 'stub' }, (args) => ({
          contents: `const fail = () => { throw new Error(${JSON.stringify(`${args.path} is not part of the agent bundle`)}); };
module.exports = new Proxy({}, { get: (_t, k) => (k === '__esModule' ? false : fail) });`,
          loader: 'js',
        }));
      },
    },
  ],
  logLevel: 'warning',
});
