// Versions the agent reports. balena tools check the supervisor version (the balena CLI refuses
// below 7.21.4 and turns livepush off below 9.7.0), so the device API reports the balena API
// level Bosun implements; Bosun's own version is reported beside it.
export const BOSUN_VERSION = '0.1.0';
export const BALENA_API_VERSION = '17.0.0';
