import { describe, expect, it } from '@jest/globals';
import { isTransient, isTransientStatus } from '../../../src/shared/failures.js';

// git 2.39.5 with curl 7.88.1 and OpenSSH, captured on the test machine (`git ls-remote` against a closed port, a
// server answering each status, names that do not resolve), and the words of the Git servers the issue names.
const GIT: Array<[string, string, boolean]> = [
  [
    'HTTP, nothing listens',
    "fatal: unable to access 'http://127.0.0.1:9/x.git/': Failed to connect to 127.0.0.1 port 9 after 0 ms: Couldn't connect to server",
    true,
  ],
  ['HTTP, older curl', "fatal: unable to access 'https://x/r.git/': Failed to connect to x port 443: Connection refused", true],
  ['HTTP 503', "fatal: unable to access 'http://127.0.0.1:18923/x.git/': The requested URL returned error: 503", true],
  ['HTTP 500', "fatal: unable to access 'http://127.0.0.1:18923/x.git/': The requested URL returned error: 500", true],
  ['HTTP 429', "fatal: unable to access 'http://127.0.0.1:18923/x.git/': The requested URL returned error: 429", true],
  [
    'HTTP 503 mid-push',
    'error: RPC failed; HTTP 503 curl 22 The requested URL returned error: 503 | fatal: the remote end hung up unexpectedly',
    true,
  ],
  ['reset mid-transfer', 'error: RPC failed; curl 56 Recv failure: Connection reset by peer | fatal: early EOF', true],
  [
    'silent server (lowSpeedTime)',
    "fatal: unable to access 'https://x/r.git/': Operation too slow. Less than 1000 bytes/sec transferred the last 20 seconds",
    true,
  ],
  ['the attempt bound (transport.ts)', 'no answer within 120 s', true],
  [
    'curl, name not resolved (either kind)',
    "fatal: unable to access 'http://no-such-host.invalid/x.git/': Could not resolve host: no-such-host.invalid",
    true,
  ],
  [
    'SSH, resolver failing',
    'ssh: Could not resolve hostname git.example.com: Temporary failure in name resolution | fatal: Could not read from remote repository.',
    true,
  ],
  [
    'SSH, nothing listens',
    'ssh: connect to host 127.0.0.1 port 9: Connection refused | fatal: Could not read from remote repository. | Please make sure you have the correct access rights | and the repository exists.',
    true,
  ],
  [
    'SSH, timed out',
    'ssh: connect to host git.example.com port 22: Connection timed out | fatal: Could not read from remote repository.',
    true,
  ],
  ['HTTP 401 without credentials', "fatal: could not read Username for 'http://127.0.0.1:18923': terminal prompts disabled", false],
  [
    'HTTP 401, wrong password',
    "remote: authentication required | fatal: Authentication failed for 'http://127.0.0.1:43035/fault-3.git/'",
    false,
  ],
  ['HTTP 403', "fatal: unable to access 'http://127.0.0.1:18923/x.git/': The requested URL returned error: 403", false],
  ['HTTP 404', "fatal: repository 'http://127.0.0.1:18923/404/x.git/' not found", false],
  ['missing branch', "fatal: couldn't find remote ref refs/heads/nope", false],
  [
    'SSH, no such name',
    'ssh: Could not resolve hostname no-such-host.invalid: Name or service not known | fatal: Could not read from remote repository.',
    false,
  ],
  ['SSH, key refused', 'git@x: Permission denied (publickey). | fatal: Could not read from remote repository.', false],
  [
    'SSH, host key refused',
    'No ED25519 host key is known for x and you have requested strict checking. | Host key verification failed.',
    false,
  ],
  ['push hook', '! [remote rejected] HEAD -> main (pre-receive hook declined) | error: failed to push some refs', false],
  [
    'protected branch',
    'remote: error: GH006: Protected branch update failed for refs/heads/main. | ! [remote rejected] HEAD -> main (protected branch hook declined)',
    false,
  ],
  ['not a repository', "fatal: 'x' does not appear to be a git repository", false],
  ['TLS certificate', "fatal: unable to access 'https://x/': server certificate verification failed. CAfile: none CRLfile: none", false],
  ['what the list does not know', 'fatal: something nobody has seen before', false],
];

describe('which failures of another party are transient (issue 23)', () => {
  it.each(GIT)('git: %s', (_what, message, transient) => expect(isTransient({ message })).toBe(transient));

  it.each([
    [408, true],
    [429, true],
    [500, true],
    [502, true],
    [503, true],
    [504, true],
    [400, false],
    [401, false],
    [403, false],
    [404, false],
    [409, false],
    [422, false],
  ])('HTTP %i', (status, transient) => {
    expect(isTransientStatus(status)).toBe(transient);
    // An answer is what counts, whatever the message says.
    expect(isTransient({ status, message: 'Connection refused' })).toBe(transient);
  });

  it.each([
    ['ECONNREFUSED', true],
    ['ECONNRESET', true],
    ['ETIMEDOUT', true],
    ['ECONNABORTED', true],
    ['EAI_AGAIN', true],
    ['EHOSTUNREACH', true],
    ['ENOTFOUND', false],
    ['CERT_HAS_EXPIRED', false],
  ])('system error %s', (code, transient) => expect(isTransient({ code })).toBe(transient));
});
