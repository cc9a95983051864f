// First contact with the control plane: the provisioning key of config.json (`apiKey`) buys the
// device its own key, which is kept in config.json (`deviceApiKey`); the provisioning key is then
// dropped from the file, as balena does. The uuid is in config.json before the first attempt, so an
// agent that stopped before it saved the key registers again with the same uuid and provisioning
// key: the server answers that repeat with a new key for the same device (200) as long as the
// device has never used its key.
import type { Registered, Registration as RegistrationBody } from '../../shared/deviceLink.js';
import { request } from './httpClient.js';

export interface Registration {
  deviceId: string;
  deviceKey: string;
}

export async function registerDevice(endpoint: string, provisioningKey: string, device: { uuid: string; type: string; name: string }): Promise<Registration> {
  const answer = await request(`${endpoint}/device/register`, {
    method: 'POST',
    headers: { authorization: `Bearer ${provisioningKey}` },
    body: { uuid: device.uuid, device_type: device.type, name: device.name } satisfies RegistrationBody,
    timeoutMs: 30_000,
  });
  if (answer.status === 409) {
    throw new Error(
      `a device with uuid ${device.uuid} is already registered (with another provisioning key, or it has used its key), ` +
        'and this device has no key: delete it on the server or give this device a new uuid',
    );
  }
  if (answer.status !== 201 && answer.status !== 200) throw new Error(`registration refused (${answer.status}): ${answer.body.slice(0, 200)}`);
  const body = JSON.parse(answer.body) as Partial<Registered>;
  if (!body.id || !body.device_key) throw new Error('registration answer without a device id and key');
  return { deviceId: body.id, deviceKey: body.device_key };
}
