/**
 * Sends our events back to Keptn through the distributor (`POST /event`, structured CloudEvent JSON).
 * The SDK's own transport resolves on any status and never times out, so this uses axios with a timeout and a 2xx
 * check, retried under one policy (retry.ts).
 */
import axios, { type AxiosInstance } from 'axios';
import type { OutgoingEvent, SequenceTriggeredEvent } from './events.js';
import { ServiceError, type ServiceErrorOptions } from '../shared/errors.js';
import { isRetryableError, realSleep, retry, type RetryPolicy, type Sleep } from '../shared/retry.js';

export interface EventSink {
  send(event: OutgoingEvent): Promise<void>;
}

/** Where the observer announces sequences (HttpEventSink is one). */
export interface SequenceSink {
  send(event: SequenceTriggeredEvent): Promise<void>;
}

/**
 * Eight attempts over about half a minute at most: the distributor is in the same pod and comes back quickly after a
 * restart, and an undelivered `.finished` is kept and sent again by the runner's resume loop anyway.
 */
export const DELIVERY_POLICY: RetryPolicy = { attempts: 8, baseDelayMs: 250, maxDelayMs: 10_000, retryable: isRetryableError };

export interface HttpEventSinkOptions {
  url: string;
  timeoutMs?: number;
  policy?: RetryPolicy;
  /** Tests pass a clock that does not sleep. */
  sleep?: Sleep;
  /** Sent as `x-token` when the service talks to the Keptn API directly instead of the distributor. */
  apiToken?: string;
}

export class EventDeliveryError extends ServiceError {
  constructor(message: string, options: ServiceErrorOptions = {}) {
    super('EVENT_DELIVERY_FAILED', message, options);
  }
}

export class HttpEventSink implements EventSink, SequenceSink {
  private readonly http: AxiosInstance;

  constructor(private readonly opts: HttpEventSinkOptions) {
    this.http = axios.create({
      timeout: opts.timeoutMs ?? 5_000,
      headers: {
        'content-type': 'application/cloudevents+json',
        ...(opts.apiToken ? { 'x-token': opts.apiToken } : {}),
      },
      // Any status is an answer; we decide what counts as delivered.
      validateStatus: () => true,
      // A redirect is an answer too, never followed: follow-redirects (axios' transport) drops `authorization` on a
      // redirect to another host but keeps every other header, so the `x-token` would go wherever the redirect points.
      maxRedirects: 0,
    });
  }

  async send(event: OutgoingEvent | SequenceTriggeredEvent): Promise<void> {
    await retry(this.opts.policy ?? DELIVERY_POLICY, () => this.post(event), this.opts.sleep ?? realSleep);
  }

  private async post(event: OutgoingEvent | SequenceTriggeredEvent): Promise<void> {
    const what = `could not deliver ${event.type} (${event.id}) to ${this.opts.url}`;
    let status: number;
    let location: unknown;
    try {
      const res = await this.http.post(this.opts.url, event);
      status = res.status;
      location = res.headers['location'];
    } catch (err: unknown) {
      // No answer at all (refused, reset, timed out): the distributor may be restarting.
      const reason = axios.isAxiosError(err) ? (err.code ?? err.message) : String(err);
      throw new EventDeliveryError(`${what}: ${reason}`, { cause: err, retryable: true });
    }
    if (status >= 200 && status < 300) return;
    if (status >= 300 && status < 400) {
      const where = originOf(location);
      throw new EventDeliveryError(
        `${what}: it answered HTTP ${status} with a redirect to ${where}, which is not followed; set KEPTN_EVENT_URL to the final address`,
      );
    }
    // A 4xx other than 408/429 will not get better by asking again.
    const retryable = status >= 500 || status === 408 || status === 429;
    throw new EventDeliveryError(`${what}: HTTP ${status}`, { retryable });
  }
}

/** Only the scheme, host and port of a redirect target: its path or query may carry a token of someone else's. */
function originOf(location: unknown): string {
  if (typeof location !== 'string' || !URL.canParse(location)) return 'a relative or missing location';
  return new URL(location).origin;
}
