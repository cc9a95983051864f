// The agent's own log: structured lines through pino, and the user-facing system messages
// ("Downloading image", "Killing service", errors) also into the bounded event table.
import pino, { type Logger } from 'pino';
import type { AgentStore } from './store/agentStore.js';

export type Level = 'info' | 'warn' | 'error';

type Subscriber = (level: Level, message: string) => void;

export class EventLog {
  readonly logger: Logger;
  private store: AgentStore | undefined;
  /** live followers of the system messages (log streams of the device API) */
  private readonly subscribers = new Set<Subscriber>();

  constructor(level = process.env.BOSUN_LOG_LEVEL ?? 'info', destination?: pino.DestinationStream) {
    this.logger = pino({ level, base: { name: 'bosun-agent' } }, destination);
  }

  attach(store: AgentStore): void {
    this.store = store;
  }

  /** Follow system messages as they happen; returns the unsubscribe function. */
  subscribe(fn: Subscriber): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  /** A system message: logged and kept in the event table. */
  event(level: Level, message: string, fields: Record<string, unknown> = {}): void {
    this.logger[level](fields, message);
    for (const fn of this.subscribers) fn(level, message);
    this.store?.addEvent(level, message).catch((err: Error) => this.logger.warn({ err }, 'could not record event'));
  }

  info(message: string, fields?: Record<string, unknown>): void {
    this.event('info', message, fields);
  }

  warn(message: string, fields?: Record<string, unknown>): void {
    this.event('warn', message, fields);
  }

  error(message: string, fields?: Record<string, unknown>): void {
    this.event('error', message, fields);
  }
}
