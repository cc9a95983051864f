// A housekeeping job every server node runs on a timer (pruning by retention): one run at a time,
// errors reported, and stop() waits for a run in progress. A run finding nothing costs little, so
// every node may run it without coordination.
export class PeriodicTask {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly task: () => Promise<unknown>,
    private readonly everyMs: number,
  ) {}

  start(onError: (err: Error) => void): void {
    this.timer ??= setInterval(() => {
      this.running = this.running.then(this.task).catch(onError);
    }, this.everyMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
