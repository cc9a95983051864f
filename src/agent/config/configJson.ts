// config.json in the balena format (applicationId, apiKey, deviceType, apiEndpoint, listenPort,
// uuid, …). Unknown fields are kept as they are: the format has grown over the years.
import fs from '../../shared/fsAsync.js';
import { Type, type Static } from '@sinclair/typebox';
import { assertValid } from '../../shared/validate.js';
import { ValidationError } from '../../shared/errors.js';
import { writeFileAtomic } from '../../shared/atomicFile.js';
import { randomHex } from '../randomHex.js';

const NumericId = Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: '^[0-9]+$' })]);

export const ConfigJsonSchema = Type.Object(
  {
    uuid: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{7,64}$' })),
    applicationId: Type.Optional(NumericId),
    apiKey: Type.Optional(Type.String()),
    deviceApiKey: Type.Optional(Type.String()),
    deviceType: Type.Optional(Type.String({ minLength: 1 })),
    deviceArch: Type.Optional(Type.String({ minLength: 1 })),
    apiEndpoint: Type.Optional(Type.String()),
    deltaEndpoint: Type.Optional(Type.String()),
    listenPort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    /** balena's are numbers, Bosun's server gives a UUID */
    deviceId: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.String({ minLength: 1 })])),
    registered_at: Type.Optional(Type.Number()),
    appUpdatePollInterval: Type.Optional(Type.Integer({ minimum: 1000 })),
    initialDeviceName: Type.Optional(Type.String()),
    hostname: Type.Optional(Type.String()),
    localMode: Type.Optional(Type.Boolean()),
    developmentMode: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: true },
);

export type ConfigJson = Static<typeof ConfigJsonSchema>;

export async function readConfigJson(file: string): Promise<ConfigJson> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  await ownerOnly(file);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ValidationError('', `not JSON (${(err as Error).message})`, `config file ${file}`);
  }
  // the schema is walked directly (see validateTarget.ts: no compiled checker, it only cost memory)
  assertValid(ConfigJsonSchema, parsed, `config file ${file}`);
  return parsed;
}

/**
 * config.json holds the device's keys: owner-only, as the agent writes it, also when it was
 * provisioned with a wider mode. A boot partition that cannot carry modes (FAT) or is read-only is
 * left as it is.
 */
async function ownerOnly(file: string): Promise<void> {
  await fs.chmod(file, 0o600).catch((err: NodeJS.ErrnoException) => {
    if (!['EPERM', 'EROFS', 'ENOTSUP'].includes(err.code ?? '')) throw err;
  });
}

export async function writeConfigJson(file: string, config: ConfigJson): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(config, null, 2)}\n`);
}

/** A device uuid as balena makes them: 32 hex characters. */
export const newUuid = () => randomHex(16);
