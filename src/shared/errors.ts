/**
 * The service's one error vocabulary. Every failure it reports carries a stable `code` (for logs, metrics and tests)
 * and says whether trying again can help: a `retryable` error is worth another attempt under the retry policy
 * (see retry.ts); anything else is terminal and is reported at once, with the message telling the user what to fix.
 *
 * Modules keep their own subclasses for `instanceof` checks, but the codes all live here, so no code is declared
 * twice and a reader sees every way the service can fail in one list.
 */

export const ERROR_CODES = [
  // The service's own environment.
  'INVALID_CONFIG',
  // Per-service settings (Keptn resource or directory).
  'INVALID_SETTINGS',
  'SETTINGS_UNAVAILABLE',
  // What the event asks for.
  'INVALID_IMAGE',
  'MISSING_IMAGE',
  'INVALID_REVISION',
  'NO_TOOL',
  'NO_CLUSTER',
  // What a release needs from the sequence, and what the target can do.
  'MISSING_REVISION',
  'STRATEGY_UNSUPPORTED',
  'VERSION_NOT_HELD',
  // Grants: what a project may use.
  'GRANT_MISSING',
  // The settings' repository, branch or files are not where the project's granted target deploys from.
  'TARGET_MISMATCH',
  // Credentials.
  'INVALID_CREDENTIALS',
  'SECRET_UNAVAILABLE',
  // Git.
  'GIT_FETCH_FAILED',
  'GIT_PUSH_FAILED',
  'GIT_FILE_MISSING',
  'GIT_REVERT_CONFLICT',
  'GIT_UNSAFE_PATH',
  'GIT_INVALID_TRAILER',
  'GIT_HOST_REFUSED',
  'GIT_HOST_UNRESOLVED',
  'MANIFEST_EDIT_FAILED',
  // Kubernetes.
  'NOT_FOUND',
  'FORBIDDEN',
  'API_ERROR',
  'STATE_CONFLICT',
  'STATE_UNAVAILABLE',
  'RECORD_TOO_LARGE',
  // Keptn.
  'EVENT_DELIVERY_FAILED',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ServiceErrorOptions {
  cause?: unknown;
  /** True when the same call may succeed later (a server briefly down, a conflict to re-read). Default false. */
  retryable?: boolean;
}

export class ServiceError extends Error {
  readonly retryable: boolean;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: ServiceErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.retryable = options.retryable ?? false;
  }
}

/** The message of anything thrown, for texts shown to users (logs get the error itself: `log.warn({ err }, ...)`). */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The stable code of a thrown value, when it has one. */
export function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}
