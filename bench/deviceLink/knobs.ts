// The device link bench's knobs (BENCH_DL_*, described at the top of bench/deviceLink.bench.ts) and
// its fixed settings, read by both processes (the server side and the simulated fleet).
import { intEnv } from '../lib.js';

export const SIZES = (process.env.BENCH_DL_SIZES ?? '1000,10000')
  .split(',')
  .map(Number)
  .filter((n) => Number.isInteger(n) && n > 0)
  .sort((a, b) => a - b);
export const ROUNDS = intEnv('BENCH_DL_ROUNDS', 3);
export const CONNS = intEnv('BENCH_DL_CONNS', 50);
export const LOAD_S = intEnv('BENCH_DL_LOAD_S', 6);
export const WARMUP_S = 2;
export const REGISTER = intEnv('BENCH_DL_REGISTER', 1000);
export const BUDGET_S = intEnv('BENCH_DL_BUDGET_S', 150);
export const WAIT_S = 60;
/** a round that has not delivered to every device by then is cut short (the polls would 304 at WAIT_S) */
export const ROUND_TIMEOUT_MS = intEnv('BENCH_DL_ROUND_TIMEOUT_S', 50) * 1000;
/** how long the release POST may take (whatever the round's end) */
export const POST_TIMEOUT_MS = 180_000;
export const DEVICE_TYPE = 'raspberrypi4-64';
export const ROLE = process.env.BENCH_DEVICELINK_ROLE;
