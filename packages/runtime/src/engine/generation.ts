import { formatIssues, ValidationError, type ValidationIssue } from '@fairkv/core';

/** Options of one generation request. Defaults: greedy, 128 tokens. */
export interface GenerateOptions {
  /** Most tokens to generate (default 128). */
  maxTokens?: number;
  /** Sampling temperature; 0 (default) is greedy. */
  temperature?: number;
  /** Nucleus sampling mass in (0, 1] (default 1). */
  topP?: number;
  /** Seed of the sampler (default 0); the same seed gives the same tokens. */
  seed?: number;
  /** Stop when the generated text contains one of these (the stop string is not returned). */
  stop?: string[];
  /** Stop at the tokenizer's end-of-sequence token (default true). */
  stopAtEos?: boolean;
  /** Cancels the request; the stream ends with finish reason `cancelled`. */
  signal?: AbortSignal;
  /** Keep the logits of every generated position in the result (tests, analysis). */
  returnLogits?: boolean;
}

/** One streamed token. */
export interface GenerationChunk {
  /** 0-based index of the generated token. */
  index: number;
  tokenId: number;
  /** Text that became complete with this token (may be empty while a character is incomplete). */
  text: string;
}

/** Why generation ended. */
export type FinishReason = 'eos' | 'stop' | 'length' | 'cancelled';

/** The whole outcome of one request. */
export interface GenerationResult {
  requestId: string;
  promptTokenIds: number[];
  tokenIds: number[];
  text: string;
  finishReason: FinishReason;
  /** KV tokens kept per `[layer][kvHead]` after compression (before decode growth). */
  keptTokens: number[][];
  /** Which replica served each `[layer][kvHead]`. */
  replicas: number[][];
  /** Logits `[vocab]` of each generated position, when `returnLogits` was set. */
  logits?: Float32Array[];
  /** Seconds from submission to the first token and to the end. */
  timeToFirstTokenSeconds: number;
  totalSeconds: number;
}

/** Options with defaults applied. */
export type ResolvedGenerateOptions = Required<Omit<GenerateOptions, 'signal'>> & { signal?: AbortSignal };

/**
 * Validates and completes generation options.
 * @throws ValidationError naming every bad option, its value and what was expected.
 */
export function resolveGenerateOptions(options: GenerateOptions): ResolvedGenerateOptions {
  const issues: ValidationIssue[] = [];
  const maxTokens = options.maxTokens ?? 128;
  const temperature = options.temperature ?? 0;
  const topP = options.topP ?? 1;
  const seed = options.seed ?? 0;
  if (!Number.isInteger(maxTokens) || maxTokens < 1)
    issues.push({ path: '$.maxTokens', message: `expected an integer >= 1, got ${maxTokens}` });
  if (!(temperature >= 0) || !Number.isFinite(temperature))
    issues.push({ path: '$.temperature', message: `expected a finite number >= 0, got ${temperature}` });
  if (!(topP > 0 && topP <= 1)) issues.push({ path: '$.topP', message: `expected a number in (0, 1], got ${topP}` });
  if (!Number.isInteger(seed)) issues.push({ path: '$.seed', message: `expected an integer, got ${seed}` });
  const stop = options.stop ?? [];
  stop.forEach((text, i) => {
    if (typeof text !== 'string' || text.length === 0)
      issues.push({ path: `$.stop[${i}]`, message: `expected a non-empty string, got ${JSON.stringify(text)}` });
  });
  if (issues.length > 0) throw new ValidationError(`invalid generation options:\n${formatIssues(issues)}`, issues);
  return {
    maxTokens,
    temperature,
    topP,
    seed,
    stop,
    stopAtEos: options.stopAtEos ?? true,
    returnLogits: options.returnLogits ?? false,
    ...(options.signal ? { signal: options.signal } : {}),
  };
}

/**
 * A running generation: iterate it for streamed tokens, or await `result` for the whole outcome.
 * Errors (a refused request, a device failure) reject both.
 */
export class GenerationStream implements AsyncIterable<GenerationChunk> {
  readonly requestId: string;
  readonly result: Promise<GenerationResult>;
  #chunks: GenerationChunk[] = [];
  #waiters: (() => void)[] = [];
  #done = false;
  #error: unknown;
  #resolve!: (result: GenerationResult) => void;
  #reject!: (error: unknown) => void;

  constructor(requestId: string) {
    this.requestId = requestId;
    this.result = new Promise<GenerationResult>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // a caller that only iterates must not see an unhandled rejection of `result`
    this.result.catch(() => {});
  }

  /** @internal */
  push(chunk: GenerationChunk): void {
    this.#chunks.push(chunk);
    this.#wake();
  }

  /** @internal */
  finish(result: GenerationResult): void {
    this.#done = true;
    this.#resolve(result);
    this.#wake();
  }

  /** @internal */
  fail(error: unknown): void {
    this.#done = true;
    this.#error = error;
    this.#reject(error);
    this.#wake();
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<GenerationChunk> {
    let next = 0;
    while (true) {
      if (next < this.#chunks.length) {
        yield this.#chunks[next++]!;
        continue;
      }
      if (this.#done) {
        if (this.#error !== undefined) throw this.#error;
        return;
      }
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }
}
