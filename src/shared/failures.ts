/**
 * Transient or permanent: the one place that decides whether a failure of another party (a Git host, the Kubernetes
 * API, the resource-service, the distributor) may go away by itself. A transient failure is waited out under the one
 * retry policy (retry.ts) until the deployment's deadline; a permanent one ends the deployment at once, with a
 * message that says what to fix. Pure: it reads an HTTP status, a system error code or the words a tool printed.
 *
 * What this list does not know is permanent: the deployment ends at once with the tool's own words, instead of
 * waiting out its deadline on a failure nobody can say will pass. A transient failure found missing is one more
 * pattern here.
 */

export interface FailureFacts {
  /** The HTTP status the party answered, when it answered. */
  status?: number;
  /** A system or client error code (`ECONNREFUSED`, `EAI_AGAIN`), when the call never got an answer. */
  code?: string;
  /** What a command printed (git's last lines), or an error's message. */
  message?: string;
}

/**
 * 408, 429 and every 5xx ask to be tried again (RFC 9110 section 15.6: the server failed, not the request; RFC 6585
 * section 4 for 429); every other 4xx is about the request, which will be the same next time.
 */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599);
}

/**
 * Errors of the connection, not of the request (libuv and getaddrinfo codes as Node reports them). ENOTFOUND is the
 * name not existing (getaddrinfo's EAI_NONAME); EAI_AGAIN is the resolver failing for now, the temporary one.
 */
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
]);
const PERMANENT_CODES = new Set([
  'ENOTFOUND',
  'EAI_NONAME',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * The server understood and said no, or what we asked for does not exist: git over HTTP (curl's "returned error"),
 * git over SSH (OpenSSH's own words), and the server's refusal of a push (a hook, a protected branch).
 */
const PERMANENT = new RegExp(
  [
    'Authentication failed',
    'could not read (Username|Password)',
    'Permission denied',
    'Host key verification failed',
    'REMOTE HOST IDENTIFICATION HAS CHANGED',
    // 4xx but 408 and 429, which are transient.
    'returned error: 4(?!08|29)\\d\\d\\b',
    '\\bHTTP 4(?!08|29)\\d\\d\\b',
    'not found',
    "couldn't find remote ref",
    'does not appear to be a git repository',
    'hook declined',
    'remote rejected',
    'protected branch',
    'certificate',
    'Name or service not known',
    'No address associated with hostname',
  ].join('|'),
  'i',
);

/**
 * The party was away, overloaded or slow: the connection was refused, reset, cut or timed out, the name could not be
 * resolved for now, or it answered 408, 429 or 5xx. curl says "Could not resolve host" both for a name that does not
 * exist and for a resolver that failed (lib/hostip.c, Curl_resolver_error), so it counts as transient: the deadline
 * bounds the wait, and the final message names the host.
 */
const TRANSIENT = new RegExp(
  [
    'returned error: (408|429|5\\d\\d)\\b',
    '\\bHTTP (408|429|5\\d\\d)\\b',
    'Connection refused',
    'Connection reset',
    'Connection timed out',
    'Connection closed by',
    'Operation timed out',
    'Operation too slow',
    'timed out',
    "Couldn't connect to server",
    'Failed to connect to',
    'Could not resolve host',
    'Temporary failure in name resolution',
    'Empty reply from server',
    'remote end hung up unexpectedly',
    'early EOF',
    'SSL_ERROR_SYSCALL',
    'Recv failure',
    'Send failure',
    'no answer within',
    ...[...TRANSIENT_CODES],
  ].join('|'),
  'i',
);

/** Whether trying again later may succeed (see the module comment for what counts). */
export function isTransient(failure: FailureFacts): boolean {
  if (failure.status !== undefined) return isTransientStatus(failure.status);
  if (failure.code !== undefined) {
    if (TRANSIENT_CODES.has(failure.code)) return true;
    if (PERMANENT_CODES.has(failure.code)) return false;
  }
  const message = failure.message ?? '';
  if (PERMANENT.test(message)) return false;
  return TRANSIENT.test(message);
}
