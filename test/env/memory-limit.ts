// A memory limit for one peer process, as a pod's `resources.limits.memory` sets it: a memory cgroup of its own.
//
// Why it matters for the service: Node sizes V8's heap from the memory the process may use, the cgroup's limit when
// there is one (node src/api/environment.cc, SetIsolateConstraints: uv_get_constrained_memory, then V8's
// ResourceConstraints::ConfigureDefaults). Measured on this machine's 23.5 GiB without a limit, the heap may grow to
// 4 GiB and the young generation takes its largest size, so the resident memory says little about the pod.
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const V2_ROOT = '/sys/fs/cgroup';
const V1_MEMORY = '/sys/fs/cgroup/memory';

export interface MemoryLimit {
  /** The file a process writes its pid into to join the cgroup (children inherit it). */
  readonly procsFile: string;
  readonly bytes: number;
  /** Removes the cgroup once its processes are gone. */
  remove(): Promise<void>;
}

/** Parses a Kubernetes memory quantity in the forms a chart writes (`512Mi`, `1Gi`, `500M`, bytes). */
export function quantityBytes(quantity: string): number {
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|K|M|G)?$/.exec(quantity.trim());
  if (!match) throw new Error(`not a memory quantity this helper reads: ${JSON.stringify(quantity)}`);
  const factor = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, K: 1e3, M: 1e6, G: 1e9 }[match[2] ?? ''] ?? 1;
  return Math.round(Number(match[1]) * factor);
}

/**
 * A new memory cgroup limited to `bytes` (cgroup v2 when its memory controller is on, else v1), or a reason why
 * there cannot be one here (not root, no memory controller): the caller reports it instead of a figure.
 */
export async function memoryLimit(name: string, bytes: number): Promise<MemoryLimit | { unavailable: string }> {
  const v2 = await readFile(join(V2_ROOT, 'cgroup.subtree_control'), 'utf8').catch(() => '');
  const [dir, limitFile] = v2.split(/\s+/).includes('memory')
    ? [join(V2_ROOT, name), 'memory.max']
    : [join(V1_MEMORY, name), 'memory.limit_in_bytes'];
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, limitFile), String(bytes));
  } catch (err: unknown) {
    return { unavailable: `no memory cgroup could be made at ${dir}: ${err instanceof Error ? err.message : String(err)}` };
  }
  return {
    procsFile: join(dir, 'cgroup.procs'),
    bytes,
    remove: () => rmdir(dir).catch(() => undefined),
  };
}

/** The command and arguments that run `command` inside the cgroup: a shell joins it, then becomes the command. */
export function insideLimit(limit: MemoryLimit, command: string, args: string[]): [string, string[]] {
  return ['/bin/sh', ['-c', 'echo $$ > "$0" && exec "$@"', limit.procsFile, command, ...args]];
}
