// The qemu provider's UniK errors that more than one of its modules throws. Not in store.ts: the
// agent's start-up path imports that one (unikServer.ts), and this one loads only with the provider.
import { UnikError } from '../provider.js';

export const notFound = (kind: string, id: string) => new UnikError('not-found', `no qemu ${kind} ${id}`);
export const conflict = (message: string) => new UnikError('conflict', message);
/** A write that found the disk full, as the UniK error that says so; any other error as it is. */
export const diskFull = (err: unknown) => ((err as NodeJS.ErrnoException).code === 'ENOSPC' ? new UnikError('insufficient-storage', 'the disk is full') : err);
