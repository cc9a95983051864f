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
  /** the device (agent) that owns the object: several agents may share one engine */
  device: 'io.bosun.device',
} as const;

/** Ours when labelled with our device uuid, or unlabelled (containers of a balena Supervisor moving over). */
export const ownedBy = (labels: Record<string, string> | undefined, device: string) =>
  labels?.[LABEL.device] === undefined || labels[LABEL.device] === device;

export const SUPERVISED_FILTER = { label: [`${LABEL.supervised}=true`] };
