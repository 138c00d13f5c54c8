/**
 * Sends our events back to Keptn through the distributor (`POST /event`, structured CloudEvent JSON).
 * The SDK's own transport resolves on any status and never times out, so this uses axios with a timeout,
 * a 2xx check and capped exponential backoff.
 */
import axios, { type AxiosInstance } from 'axios';
import type { OutgoingEvent } from './events.js';
import { ServiceError, type ServiceErrorOptions } from '../errors.js';

export interface EventSink {
  send(event: OutgoingEvent): Promise<void>;
}

export interface HttpEventSinkOptions {
  url: string;
  timeoutMs?: number;
  /** How many attempts in all before giving up. */
  attempts?: number;
  backoffMs?: number;
  /** Sent as `x-token` when the service talks to the Keptn API directly instead of the distributor. */
  apiToken?: string;
}

export class EventDeliveryError extends ServiceError {
  constructor(message: string, options: ServiceErrorOptions = {}) {
    super('EVENT_DELIVERY_FAILED', message, { retryable: true, ...options });
  }
}

export class HttpEventSink implements EventSink {
  private readonly http: AxiosInstance;
  private readonly attempts: number;
  private readonly backoffMs: number;

  constructor(private readonly opts: HttpEventSinkOptions) {
    this.http = axios.create({
      timeout: opts.timeoutMs ?? 5_000,
      headers: {
        'content-type': 'application/cloudevents+json',
        ...(opts.apiToken ? { 'x-token': opts.apiToken } : {}),
      },
      // Any status is an answer; we decide what counts as delivered.
      validateStatus: () => true,
    });
    this.attempts = opts.attempts ?? 8;
    this.backoffMs = opts.backoffMs ?? 250;
  }

  async send(event: OutgoingEvent): Promise<void> {
    let last = '';
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      try {
        const res = await this.http.post(this.opts.url, event);
        if (res.status >= 200 && res.status < 300) return;
        last = `HTTP ${res.status}`;
        // A 4xx other than 408/429 will not get better by asking again.
        if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) break;
      } catch (err: unknown) {
        last = axios.isAxiosError(err) ? (err.code ?? err.message) : String(err);
      }
      if (attempt < this.attempts) await delay(Math.min(this.backoffMs * 2 ** (attempt - 1), 10_000));
    }
    throw new EventDeliveryError(`could not deliver ${event.type} (${event.id}) to ${this.opts.url}: ${last}`);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
