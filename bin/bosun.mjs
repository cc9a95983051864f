#!/usr/bin/env node
// The `bosun` command (package.json "bin"): runs the CLI's TypeScript sources through tsx, so it
// works straight after `npm ci`, with no build step, and is always the code of this checkout.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
