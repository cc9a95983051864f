// The esbuild plugin of scripts/bundle-agent.mjs that gives chosen `require()`s (or imports) inside
// third-party packages a lazy stand-in or a replacement, each rule naming the one importer it
// applies to by its file path. A dependency upgrade that moves or renames that file, or stops
// requiring the module, would silently disable the rule and its memory saving (BENCHMARKS.md §3):
// `unmatched()` names the rules that matched nothing in the build, which then fails.

const escapeRegex = (m) => m.replace(/[/.]/g, '\\$&');

/** A filter matching exactly these module names, for esbuild's onResolve. */
export const exactly = (modules) => new RegExp(`^(${[...new Set(modules)].map(escapeRegex).join('|')})$`);

/**
 * @param {{ module: string, importer: RegExp, importKind?: string, contents?: string }[]} lazyRequires
 * @param {{ module: string, importer: RegExp, importKind?: string, contents: string }[]} replacedRequires
 */
export function requireRules(lazyRequires, replacedRequires) {
  const rules = [...lazyRequires.map((r) => ({ ...r, kind: 'lazy' })), ...replacedRequires.map((r) => ({ ...r, kind: 'replaced' }))];
  const matched = new Set();
  /** @type {import('esbuild').Plugin} */
  const plugin = {
    name: 'lazy-and-replaced-requires',
    setup(b) {
      b.onResolve({ filter: exactly(rules.map((r) => r.module)) }, (args) => {
        // the stand-ins' own require() of the module resolves as usual
        if (args.namespace === 'lazy' || args.namespace === 'replaced') return undefined;
        const rule = rules.find((r) => r.module === args.path && r.importer.test(args.importer) && args.kind === (r.importKind ?? 'require-call'));
        if (!rule) return undefined;
        matched.add(rule);
        return { path: args.path, namespace: rule.kind, pluginData: { rule, resolveDir: args.resolveDir } };
      });
      // The lazy stand-in is a function so that callable modules keep working. An object that has
      // it as its prototype (docker-modem's http.js does that with https) gets what is assigned to
      // it as its own property, as with the real module.
      b.onLoad({ filter: /.*/, namespace: 'lazy' }, (args) => ({
        contents: `let real;
const load = () => (real ??= require(${JSON.stringify(args.path)}));
const lazy = new Proxy(function () {}, {
  get: (_t, k) => load()[k],
  set: (_t, k, v, receiver) =>
    receiver === lazy ? Reflect.set(load(), k, v) : Reflect.defineProperty(receiver, k, { value: v, writable: true, enumerable: true, configurable: true }),
  has: (_t, k) => k in load(),
  apply: (_t, self, a) => Reflect.apply(load(), self, a),
  construct: (_t, a) => Reflect.construct(load(), a),
});
module.exports = lazy;`,
        resolveDir: args.pluginData.resolveDir,
        loader: 'js',
      }));
      b.onLoad({ filter: /.*/, namespace: 'replaced' }, (args) => ({
        contents: args.pluginData.rule.contents,
        resolveDir: args.pluginData.resolveDir,
        loader: 'js',
      }));
    },
  };
  /** the rules no import in the build matched, described for the build's error */
  const unmatched = () => rules.filter((r) => !matched.has(r)).map((r) => `${r.kind} ${r.importKind ?? 'require-call'} of '${r.module}' from ${r.importer}`);
  return { plugin, unmatched };
}
