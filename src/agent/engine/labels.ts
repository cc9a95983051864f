// Labels the agent puts on what it creates. Identity is read back from these only, never from names.
// The io.balena.* ones keep balena tooling (and devices moving over) working.
export const LABEL = {
  supervised: 'io.balena.supervised',
  appId: 'io.balena.app-id',
  appUuid: 'io.balena.app-uuid',
  serviceName: 'io.balena.service-name',
  releaseId: 'io.bosun.release-id',
  commit: 'io.bosun.commit',
  configHash: 'io.bosun.config-hash',
  config: 'io.bosun.config',
  dependsOn: 'io.bosun.depends-on',
  /** set only by agents given an engine scope: several agents sharing one engine (tests, simulators) */
  scope: 'io.bosun.scope',
  /** objects of the UniK API (src/agent/unik), never supervised: the reconciler leaves them alone */
  unik: 'io.bosun.unik',
} as const;

/**
 * Whose an object is. A device's one agent runs unscoped and owns every supervised object without a
 * scope (so it adopts what a balena Supervisor, or itself under a lost identity, left); an agent
 * with a scope owns only objects of that scope.
 */
export const ownedBy = (labels: Record<string, string> | undefined, scope: string | undefined) => labels?.[LABEL.scope] === scope;

export const scopeLabel = (scope: string | undefined): Record<string, string> => (scope ? { [LABEL.scope]: scope } : {});

export const SUPERVISED_FILTER = { label: [`${LABEL.supervised}=true`] };
