// Property-based tests: whatever arrives, the parser answers with a verdict, never an exception, and never lets a
// malformed value through.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { parseRequest } from '../../../src/keptn/parse.js';
import { ImageRefError, formatImageRef, parseImageRef } from '../../../src/git/image.js';
import { triggeredCloudEvent } from '../helpers.js';

const contentTypes = fc.constantFrom('application/cloudevents+json', 'application/json', 'application/cloudevents-batch+json', 'text/plain', '');

describe('parseRequest', () => {
  it('classifies any body and headers without throwing', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), contentTypes, fc.dictionary(fc.constantFrom('ce-specversion', 'ce-type', 'ce-id', 'ce-source', 'ce-shkeptncontext'), fc.string()), (body, type, ce) => {
        const outcome = parseRequest({ 'content-type': type, ...ce }, body);
        expect(['accepted', 'ignored', 'invalid']).toContain(outcome.kind);
        if (outcome.kind === 'invalid') expect(outcome.problems.length).toBeGreaterThan(0);
      }),
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
