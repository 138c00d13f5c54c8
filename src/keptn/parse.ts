/**
 * Turns an HTTP request into a validated Keptn `.triggered` event, or says precisely why it cannot.
 * Structured, binary and batch mode are told apart by the cloudevents SDK from the headers.
 * @see https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/bindings/http-protocol-binding.md
 */
import { HTTP, type CloudEventV1 } from 'cloudevents';
import { isRecord, isStringMap, nestsDeeperThan } from '../shared/json.js';
import { EVENT_PREFIX, type KeptnEventData, type TriggeredEvent } from './events.js';

/**
 * `too-large` is an event that is well formed but could never be recorded (see MAX_DATA_BYTES): refused for good
 * (413), as asking again cannot help.
 */
export type ParseOutcome =
  | { kind: 'accepted'; event: TriggeredEvent }
  | { kind: 'ignored'; reason: string }
  | { kind: 'invalid'; problems: string[] }
  | { kind: 'too-large'; reason: string };

/** Tasks this service answers. Anything else that is a valid CloudEvent is acknowledged and ignored. */
export const HANDLED_TASKS = ['deployment', 'rollback', 'release'] as const;
export type HandledTask = (typeof HANDLED_TASKS)[number];

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Event ids and contexts are UUIDs wherever Keptn makes them: shipyard-controller gives every task event
 * `uuid.NewString()` and starts contexts the same way (keptn/keptn 1.4.5,
 * shipyard-controller/internal/common/keptn_helpers.go, CreateEventWithPayload); the API replaces the id of every
 * event sent to it and keeps a sender's context only when google/uuid's Parse accepts it, else derives a UUID from it
 * (api/handlers/event.go, createOrApplyKeptnContext). The distributor passes both through unchanged. Parse accepts
 * four spellings, any case: canonical 8-4-4-4-12, with `urn:uuid:` in front, in braces, or 32 hex digits.
 * Anything else (a regular expression, a newline, 200 KB) cannot come from Keptn and never reaches Git or the store.
 */
const HEX_UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
export const KEPTN_UUID = new RegExp(`^(?:(?:urn:uuid:)?${HEX_UUID}|\\{${HEX_UUID}\\}|[0-9a-f]{32})$`, 'i');

/** Keptn's data blocks nest a few levels; this bound keeps a hostile body from exhausting the stack downstream. */
export const MAX_DATA_DEPTH = 64;
/**
 * An accepted event is kept in a ConfigMap (at most 1 MiB of data, with the outcome beside it), so larger data could
 * never be recorded. Keptn's `.triggered` events are a few KB.
 */
export const MAX_DATA_BYTES = 512 * 1024;

export function parseRequest(headers: Record<string, string | string[] | undefined>, body: unknown): ParseOutcome {
  const flatHeaders: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) flatHeaders[k] = Array.isArray(v) ? v.join(',') : v;
  const raw = typeof body === 'string' ? body : Buffer.isBuffer(body) ? body.toString('utf8') : JSON.stringify(body ?? null);
  const version = specVersionProblem(flatHeaders, raw);
  if (version) return { kind: 'invalid', problems: [version] };
  let decoded: CloudEventV1<unknown> | CloudEventV1<unknown>[];
  try {
    decoded = HTTP.toEvent({ headers: flatHeaders, body: raw });
  } catch (err: unknown) {
    return { kind: 'invalid', problems: [`not a CloudEvent: ${sdkErrorText(err)}`] };
  }
  if (Array.isArray(decoded)) return { kind: 'invalid', problems: ['batched CloudEvents are not supported: send one event per request'] };
  return classify(decoded);
}

/** The SDK assumes 1.0 when specversion is absent; a Keptn event must say it. */
function specVersionProblem(headers: Record<string, string>, raw: string): string | undefined {
  const type = (headers['content-type'] ?? '').toLowerCase();
  if (type.startsWith('application/cloudevents-batch+json')) return undefined;
  if (type.startsWith('application/cloudevents+json')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch (err: unknown) {
      return `not a CloudEvent: the body is not JSON (${(err as Error).message})`;
    }
    if (!isRecord(parsed)) return 'not a CloudEvent: a structured event must be a JSON object';
    if (parsed['specversion'] !== '1.0') return 'not a CloudEvent: specversion must be "1.0"';
    return missingAttributes((name) => parsed[name]);
  }
  const header = headers['ce-specversion'];
  if (header === undefined)
    return 'not a CloudEvent: send content-type application/cloudevents+json (structured mode) or ce-* headers (binary mode)';
  if (header !== '1.0') return 'not a CloudEvent: ce-specversion must be "1.0"';
  return missingAttributes((name) => headers[`ce-${name}`]);
}

/** The SDK would invent an `id` or `source` that is missing; de-duplication and replies need the sender's own. */
function missingAttributes(get: (name: string) => unknown): string | undefined {
  const missing = ['id', 'source', 'type'].filter((name) => typeof get(name) !== 'string' || get(name) === '');
  return missing.length
    ? `not a CloudEvent: required attribute${missing.length > 1 ? 's' : ''} ${missing.join(', ')} missing or not a string`
    : undefined;
}

function sdkErrorText(err: unknown): string {
  if (err && typeof err === 'object' && 'errors' in err && Array.isArray((err as { errors: unknown[] }).errors)) {
    const details = (err as { errors: Array<{ instancePath?: string; message?: string }> }).errors.map((e) =>
      `${e.instancePath || 'event'} ${e.message ?? ''}`.trim(),
    );
    if (details.length) return details.join('; ');
  }
  return err instanceof Error ? err.message : String(err);
}

export function classify(ce: CloudEventV1<unknown>): ParseOutcome {
  const type = String(ce.type ?? '');
  const task = triggeredTask(type);
  if (!task) return { kind: 'ignored', reason: `event type ${type} is not handled by this service` };

  const problems: string[] = [];
  const idProblem = uuidProblem('id', ce.id);
  if (idProblem) problems.push(idProblem);
  const shkeptncontext = ce['shkeptncontext'];
  if (typeof shkeptncontext !== 'string' || shkeptncontext === '') problems.push('attribute shkeptncontext is required');
  else {
    const contextProblem = uuidProblem('shkeptncontext', shkeptncontext);
    if (contextProblem) problems.push(contextProblem);
  }
  const gitcommitid = ce['gitcommitid'];
  if (gitcommitid !== undefined && typeof gitcommitid !== 'string') problems.push('attribute gitcommitid must be a string');

  let data: unknown = ce.data;
  if (typeof data === 'string') {
    try {
      data = JSON.parse(data);
    } catch {
      problems.push('data is not JSON');
    }
  }
  if (!isRecord(data)) {
    problems.push('data must be a JSON object');
    return { kind: 'invalid', problems };
  }
  if (nestsDeeperThan(data, MAX_DATA_DEPTH)) {
    problems.push(`data nests deeper than ${MAX_DATA_DEPTH} levels`);
    return { kind: 'invalid', problems };
  }
  const size = Buffer.byteLength(JSON.stringify(data));
  // A malformed event is 400 whatever its size; 413 says only that a good one cannot be kept.
  if (size > MAX_DATA_BYTES && !problems.length)
    return { kind: 'too-large', reason: `event data is ${size} bytes; at most ${MAX_DATA_BYTES} can be recorded` };
  for (const field of ['project', 'stage', 'service'] as const) {
    const value = data[field];
    if (typeof value !== 'string' || value === '') problems.push(`data.${field} is required`);
    else if (!NAME.test(value)) problems.push(`data.${field} ${JSON.stringify(value)} is not a valid Keptn name`);
  }
  if (data['labels'] !== undefined && !isStringMap(data['labels'])) problems.push('data.labels must map strings to strings');
  const change = data['configurationChange'];
  if (change !== undefined && !(isRecord(change) && (change['values'] === undefined || isRecord(change['values'])))) {
    problems.push('data.configurationChange.values must be an object');
  }
  const deployment = data['deployment'];
  if (deployment !== undefined && !isRecord(deployment)) problems.push('data.deployment must be an object');
  if (problems.length) return { kind: 'invalid', problems };

  return {
    kind: 'accepted',
    event: {
      id: ce.id,
      type,
      source: ce.source,
      task,
      shkeptncontext: shkeptncontext as string,
      ...(typeof gitcommitid === 'string' && gitcommitid ? { gitcommitid } : {}),
      data: data as KeptnEventData,
    },
  };
}

function triggeredTask(type: string): HandledTask | undefined {
  for (const task of HANDLED_TASKS) if (type === `${EVENT_PREFIX}${task}.triggered`) return task;
  return undefined;
}

function uuidProblem(attribute: string, value: string): string | undefined {
  if (KEPTN_UUID.test(value)) return undefined;
  const shown = value.length > 60 ? `${JSON.stringify(value.slice(0, 60))}… (${value.length} characters)` : JSON.stringify(value);
  return `attribute ${attribute} must be a UUID, as Keptn sends it (8-4-4-4-12 hex digits), got ${shown}`;
}
