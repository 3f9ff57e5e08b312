// One way to stop waiting: a promise raced against a timer that is always cleared. What
// was waited on keeps running; the caller only stops waiting for it.
export class DeadlineExceeded extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = 'DeadlineExceeded';
  }
}

export async function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_r, reject) => {
        timer = setTimeout(() => reject(new DeadlineExceeded(ms)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
