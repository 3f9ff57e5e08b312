// A task that runs, waits, and runs again until stopped; stop() waits for the run in hand.
// The sweeper, the reconciler and the webhook dispatcher are each one of these.
export class PeriodicTask<T> {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<T | undefined> | undefined;
  private stopped = false;

  constructor(
    private readonly run: () => Promise<T>,
    /** Delay before the next run, given what this run returned (undefined: it failed). */
    private readonly delayAfter: (result: T | undefined) => number,
    private readonly onError: (err: unknown) => void,
  ) {}

  start(): void {
    const loop = async () => {
      if (this.stopped) return;
      this.running = this.run().catch((err: unknown) => {
        this.onError(err);
        return undefined;
      });
      const result = await this.running;
      if (!this.stopped) this.timer = setTimeout(loop, this.delayAfter(result));
    };
    this.timer = setTimeout(loop, 0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
