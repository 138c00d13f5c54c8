// Property-based tests: whatever arrives, the parser answers with a verdict, never an exception, and never lets a
// malformed value through.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { KEPTN_UUID, MAX_DATA_DEPTH, parseRequest } from '../../../src/keptn/parse.js';
import { ImageRefError, formatImageRef, parseImageRef } from '../../../src/platform/git/image.js';
import { triggeredCloudEvent } from '../helpers.js';

const contentTypes = fc.constantFrom(
  'application/cloudevents+json',
  'application/json',
  'application/cloudevents-batch+json',
  'text/plain',
  '',
);

describe('parseRequest', () => {
  it('classifies any body and headers without throwing', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.json()),
        contentTypes,
        fc.dictionary(fc.constantFrom('ce-specversion', 'ce-type', 'ce-id', 'ce-source', 'ce-shkeptncontext'), fc.string()),
        (body, type, ce) => {
          const outcome = parseRequest({ 'content-type': type, ...ce }, body);
          expect(['accepted', 'ignored', 'invalid', 'too-large']).toContain(outcome.kind);
          if (outcome.kind === 'invalid') expect(outcome.problems.length).toBeGreaterThan(0);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('accepts a deployment.triggered only with valid Keptn names, whatever else the data holds', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.string(), fc.object(), (project, stage, service, extra) => {
        const event = triggeredCloudEvent({}, { ...extra, project, stage, service });
        const outcome = parseRequest({ 'content-type': 'application/cloudevents+json' }, JSON.stringify(event));
        const valid = [project, stage, service].every((n) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(n));
        if (outcome.kind === 'accepted') expect(valid).toBe(true);
        if (!valid) expect(outcome.kind).toBe('invalid');
      }),
      { numRuns: 300 },
    );
  });
});

describe('event ids and contexts', () => {
  const parse = (id: unknown, shkeptncontext: unknown) =>
    parseRequest({ 'content-type': 'application/cloudevents+json' }, JSON.stringify(triggeredCloudEvent({ id, shkeptncontext })));
  /** What may reach `git log --grep`, commit trailers and record names: no pattern, quoting or line syntax at all. */
  const SAFE = /^[0-9A-Za-z:{}-]{32,45}$/;
  const uuid = fc.uuid({ version: [1, 2, 3, 4, 5, 6, 7, 8] });
  /** The spellings google/uuid.Parse takes, which Keptn's API keeps as they came. */
  const spelled = fc
    .tuple(uuid, fc.constantFrom('plain', 'upper', 'braces', 'urn', 'URN', 'hex'))
    .map(
      ([u, how]) =>
        ({ plain: u, upper: u.toUpperCase(), braces: `{${u}}`, urn: `urn:uuid:${u}`, URN: `URN:UUID:${u}`, hex: u.replaceAll('-', '') })[
          how
        ],
    );

  it('accepts every UUID spelling Keptn sends, unchanged', () => {
    fc.assert(
      fc.property(spelled, spelled, (id, context) => {
        const outcome = parse(id, context);
        expect(outcome).toMatchObject({ kind: 'accepted', event: { id, shkeptncontext: context } });
      }),
      { numRuns: 500 },
    );
  });

  it('lets nothing else through: whatever is accepted is a UUID in a strict character set and length', () => {
    const hostile = fc.oneof(
      fc.string({ maxLength: 60 }),
      fc.string({ unit: 'binary', maxLength: 60 }),
      // a valid UUID with one character changed, added or removed: the near misses a regex check could let pass
      fc.tuple(spelled, fc.nat(), fc.constantFrom('|', '+', '.', '*', '\n', ' ', '"', '$', '(', '[', '^', 'g', '')).map(([u, at, c]) => {
        const i = at % (u.length + 1);
        return u.slice(0, i) + c + u.slice(i + (c === '' ? 1 : 0));
      }),
      fc.string({ minLength: 1000, maxLength: 5000 }),
    );
    fc.assert(
      fc.property(hostile, uuid, fc.boolean(), (value, other, asId) => {
        const outcome = asId ? parse(value, other) : parse(other, value);
        if (outcome.kind === 'accepted') {
          expect(value).toMatch(KEPTN_UUID);
          expect(value).toMatch(SAFE);
        } else {
          expect(outcome.kind).toBe('invalid');
          if (outcome.kind === 'invalid' && typeof value === 'string' && value !== '') {
            expect(outcome.problems.join('; ')).toMatch(new RegExp(`attribute ${asId ? 'id' : 'shkeptncontext'} must be a UUID`));
            // the reason quotes a bounded part of what came, never all of a long value
            expect(outcome.problems.join('; ').length).toBeLessThan(300);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses data nested deeper than the bound with 400, and accepts what nests within it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 * MAX_DATA_DEPTH }), fc.boolean(), (depth, arrays) => {
        const [open, close] = arrays ? ['[', ']'] : ['{"a":', '}'];
        const inner = `${open.repeat(depth)}${arrays ? '' : '0'}${close.repeat(depth)}`;
        const body = JSON.stringify(triggeredCloudEvent()).replace('"labels"', `"deep":${inner},"labels"`);
        const outcome = parseRequest({ 'content-type': 'application/cloudevents+json' }, body);
        // data itself is level 1, `deep` adds its own levels
        if (depth + 1 > MAX_DATA_DEPTH)
          expect(outcome).toEqual({ kind: 'invalid', problems: [`data nests deeper than ${MAX_DATA_DEPTH} levels`] });
        else expect(outcome.kind).toBe('accepted');
      }),
      { numRuns: 300 },
    );
  });
});

describe('parseImageRef', () => {
  it('either rejects with a clear error or returns a reference that prints back exactly', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 120 }), (input) => {
        try {
          const ref = parseImageRef(input);
          expect(formatImageRef(ref)).toBe(input);
          expect(input).not.toMatch(/[\s'"`$;&|<>\\]/);
          expect(input.startsWith('-')).toBe(false);
        } catch (err: unknown) {
          expect(err).toBeInstanceOf(ImageRefError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
