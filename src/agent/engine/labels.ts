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
} as const;

export const SUPERVISED_FILTER = { label: [`${LABEL.supervised}=true`] };
