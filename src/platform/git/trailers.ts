/**
 * Trailers: how a deployment is found again in Git. Each value is one line (checkTrailerLine), and commits are looked
 * up by exact lines, never by patterns: ids and contexts come from outside, and as `git log --grep` patterns an id such
 * as `x|` or `a+b` would match other commits. A group commit holds one message block per deployment (groupMessage).
 */
import type { Clone } from './clones.js';
import { GitError } from './command.js';

/** The trailer that names the Keptn event a commit deploys: how a retried or resumed deployment finds its commit. */
export const DEPLOYMENT_TRAILER = 'Keptn-Deployment-Id';

const MAX_TRAILER_VALUE = 1_024;

/** A value that goes into a commit trailer must be one line of text: anything else could forge other trailers. */
export function checkTrailerLine(line: string, label: string): void {
  if (!line || line.length > MAX_TRAILER_VALUE || /[\x00-\x1f\x7f]/.test(line)) {
    throw new GitError(
      'GIT_INVALID_TRAILER',
      `${label} must be one line of at most ${MAX_TRAILER_VALUE} characters without control characters`,
    );
  }
}

/**
 * The newest commit reachable from `ref` whose message holds every one of `lines` as a whole line. Git pre-selects
 * with fixed strings (never patterns); the exact comparison is ours.
 */
export async function findCommitWithLines(clone: Clone, ref: string, lines: string[]): Promise<string | undefined> {
  for (const line of lines) checkTrailerLine(line, 'a trailer line');
  const grep = lines.map((l) => `--grep=${l}`);
  const out = await clone.git.raw(['log', '-z', '--fixed-strings', '--all-match', ...grep, '--format=%H%n%B', ref, '--']);
  for (const record of out.split('\0')) {
    const [sha = '', ...body] = record.replace(/^\n/, '').split('\n');
    if (!/^[0-9a-f]{40,64}$/.test(sha)) continue;
    const have = new Set(body);
    if (lines.every((l) => have.has(l))) return sha;
  }
  return undefined;
}

/** Names, within one deployment's block of a group commit, a file that deployment changed (what its roll-back undoes). */
export const CHANGED_FILE_TRAILER = 'Keptn-Changed-File';

/**
 * The message of a commit that carries several deployments' changes: a subject that says so, then each deployment's
 * own message as a block, closed by the files it changed and its `Keptn-Deployment-Id` trailer. Each block's lines are
 * whole lines, so a trailer lookup (resume, reuse, roll-back) finds the commit as it would a commit of its own.
 */
export function groupMessage(members: ReadonlyArray<{ deploymentId: string; message: string; files: readonly string[] }>): string {
  const blocks = members.map((m) => {
    for (const f of m.files) checkTrailerLine(f, 'a changed file');
    return [m.message.trim(), ...m.files.map((f) => `${CHANGED_FILE_TRAILER}: ${f}`), `${DEPLOYMENT_TRAILER}: ${m.deploymentId}`].join(
      '\n',
    );
  });
  return `keptn: ${members.length} deployments in one commit\n\n${blocks.join('\n\n')}`;
}

export interface MessageBlock {
  deploymentId: string;
  lines: string[];
  files: string[];
}

/** The deployments' blocks of a commit message: each ends at its `Keptn-Deployment-Id` line. */
export function messageBlocks(body: string): MessageBlock[] {
  const blocks: MessageBlock[] = [];
  let lines: string[] = [];
  for (const line of body.split('\n')) {
    lines.push(line);
    if (!line.startsWith(`${DEPLOYMENT_TRAILER}: `)) continue;
    const files = lines.filter((l) => l.startsWith(`${CHANGED_FILE_TRAILER}: `)).map((l) => l.slice(CHANGED_FILE_TRAILER.length + 2));
    blocks.push({ deploymentId: line.slice(DEPLOYMENT_TRAILER.length + 2), lines, files });
    lines = [];
  }
  return blocks;
}

/**
 * For each line, the newest commit reachable from `ref` whose message holds it as a whole line. One `git log` for
 * all of them (fixed strings, any of them), the exact comparison ours.
 */
export async function findCommitsWithLine(clone: Clone, ref: string, lines: string[]): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  if (!lines.length) return found;
  for (const line of lines) checkTrailerLine(line, 'a trailer line');
  const wanted = new Set(lines);
  const grep = lines.map((l) => `--grep=${l}`);
  const out = await clone.git.raw(['log', '-z', '--fixed-strings', ...grep, '--format=%H%n%B', ref, '--']);
  for (const record of out.split('\0')) {
    const [sha = '', ...body] = record.replace(/^\n/, '').split('\n');
    if (!/^[0-9a-f]{40,64}$/.test(sha)) continue;
    for (const line of body) if (wanted.has(line) && !found.has(line)) found.set(line, sha);
  }
  return found;
}
