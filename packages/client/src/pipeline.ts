/**
 * Many requests in flight over one BbyClient, for `bby`'s import and export:
 * at most `inFlight` unanswered, the results handed over in the order of the
 * requests, and one timer for the connection rather than one per request.
 */
import { type Answer, BbyClient, type RequestBody } from './client.js';
import { type ConnectionTarget, UnreachableError } from './connection.js';

/** Options of `Pipeline.connect`. */
export interface PipelineOptions {
  /** Requests kept in flight at most. */
  readonly inFlight: number;
  /** Time to connect, and longest wait for an answer while requests are in flight, in milliseconds. */
  readonly timeoutMs: number;
}

/**
 * One connection carrying many requests at once. `request` resolves when
 * there is room for another request; the first failure (an error answer, a
 * lost connection, no answer in time) is thrown by the next `request` or
 * `drain`.
 */
export class Pipeline {
  readonly #client: BbyClient;
  readonly #timer: NodeJS.Timeout;
  #failure: Error | undefined;
  #lastAnswerAt = Date.now();
  #room: (() => void) | undefined;
  #drained: (() => void) | undefined;

  private constructor(
    client: BbyClient,
    readonly inFlight: number,
    readonly timeoutMs: number,
  ) {
    this.#client = client;
    // One timer for the connection rather than one per request.
    this.#timer = setInterval(() => {
      if (client.inFlight > 0 && Date.now() - this.#lastAnswerAt > timeoutMs) {
        this.#fail(new UnreachableError(client.url, `no answer within ${timeoutMs} ms`));
      }
    }, Math.min(1_000, timeoutMs));
    this.#timer.unref();
  }

  /** Opens a connection (connection.ts); rejects with UnreachableError or ConnectionError. */
  static async connect(target: ConnectionTarget | string, options: PipelineOptions): Promise<Pipeline> {
    return new Pipeline(await BbyClient.connect(target, options.timeoutMs), options.inFlight, options.timeoutMs);
  }

  /** The node's URL. */
  get url(): string {
    return this.#client.url;
  }

  /**
   * Sends a request; `onResult` gets its result, in the order of the
   * requests. Returns undefined when another request may be sent at once,
   * else a promise that resolves when one may. Throws the first failure.
   */
  request(body: RequestBody, onResult: (result: unknown) => void): Promise<void> | undefined {
    return this.requestFrame((id) => JSON.stringify({ ...body, id }), onResult);
  }

  /** As `request`, for a request written by `write(id)` as JSON text or its UTF-8 bytes. */
  requestFrame(write: (id: number) => string | Buffer, onResult: (result: unknown) => void): Promise<void> | undefined {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#client.inFlight === 0) this.#lastAnswerAt = Date.now();
    // Requests sent in one go leave in one write rather than one system call each.
    this.#client.cork();
    this.#client.sendRequest(write, (answer) => this.#onAnswer(answer, onResult));
    if (this.#client.inFlight < this.inFlight) return undefined;
    return new Promise<void>((resolve) => (this.#room = resolve)).then(() => {
      if (this.#failure !== undefined) throw this.#failure;
    });
  }

  /** Sends one request and waits for its result. */
  async call(body: RequestBody): Promise<unknown> {
    let result: unknown;
    await this.request(body, (r) => (result = r));
    await this.drain();
    return result;
  }

  /** Waits until every request is answered. */
  async drain(): Promise<void> {
    if (this.#client.inFlight > 0 && this.#failure === undefined) await new Promise<void>((resolve) => (this.#drained = resolve));
    if (this.#failure !== undefined) throw this.#failure;
  }

  close(): void {
    clearInterval(this.#timer);
    this.#client.close();
  }

  #onAnswer(answer: Answer, onResult: (result: unknown) => void): void {
    this.#lastAnswerAt = Date.now();
    if (answer instanceof Error) this.#fail(answer);
    // Answers after a failure are dropped: the caller stops at the failure.
    else if (this.#failure === undefined) onResult(answer.result);
    this.#wake();
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    clearInterval(this.#timer);
    this.#wake();
  }

  #wake(): void {
    const failed = this.#failure !== undefined;
    if (this.#room !== undefined && (this.#client.inFlight < this.inFlight || failed)) {
      const room = this.#room;
      this.#room = undefined;
      room();
    }
    if (this.#drained !== undefined && (this.#client.inFlight === 0 || failed)) {
      const drained = this.#drained;
      this.#drained = undefined;
      drained();
    }
  }
}
