// Work that arrives in bursts, done a slice at a time. A server's event loop reads every socket that
// is ready in one go; when a thousand clients' handshakes are ready at once, finishing each as it is
// read holds every other client's message until the last is done (a storm of 3,000 WebSocket
// handshakes held a call on an open connection for up to 464 ms). Queued here instead, the
// handshakes are finished at most `budgetMs` per turn of the loop, and what other clients sent is
// read between turns.

/** A queue of jobs run in later turns of the event loop, at most `budgetMs` of them per turn. */
export class Turns {
  private jobs: (() => void)[] = []
  private next = 0
  private scheduled = false

  constructor(
    private readonly budgetMs = 4,
    private readonly onError: (e: unknown) => void = () => {},
  ) {}

  /** jobs queued and not yet run */
  get waiting(): number {
    return this.jobs.length - this.next
  }

  /** Runs `job` in a later turn, after the jobs queued before it. */
  add(job: () => void): void {
    this.jobs.push(job)
    if (!this.scheduled) {
      this.scheduled = true
      setImmediate(this.run)
    }
  }

  private readonly run = () => {
    // (at least one job a turn, however long it takes)
    const end = performance.now() + this.budgetMs
    do {
      const job = this.jobs[this.next]!
      this.jobs[this.next++] = undefined as never
      try {
        job()
      } catch (e) {
        this.onError(e)
      }
    } while (this.next < this.jobs.length && performance.now() < end)
    if (this.next < this.jobs.length) {
      setImmediate(this.run)
      // (the array is cut down once half of it is spent, so a long burst does not keep it all)
      if (this.next > 1024 && this.next * 2 > this.jobs.length) {
        this.jobs = this.jobs.slice(this.next)
        this.next = 0
      }
    } else {
      this.jobs = []
      this.next = 0
      this.scheduled = false
    }
  }
}
