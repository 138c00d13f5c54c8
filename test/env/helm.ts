// Helm v3 (test/env/peers/helm, built from helm.sh/helm/v3) for the chart's tests: lint, render, install, upgrade.
// Every call runs with its own HELM_*_HOME under the work directory, so no user's Helm settings or repositories count.
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { buildPeers } from './process.js';

const execFileAsync = promisify(execFile);

export const CHART_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'chart');

export interface HelmResult {
  stdout: string;
  stderr: string;
}

export class HelmError extends Error {
  constructor(
    readonly args: string[],
    readonly stdout: string,
    readonly stderr: string,
    readonly code: number | string | undefined,
  ) {
    super(`helm ${args.join(' ')} failed (${code}):\n${stderr || stdout}`);
    this.name = 'HelmError';
  }
}

export interface Helm {
  binary: string;
  /** Runs helm; rejects with HelmError (stdout and stderr kept) when it exits non-zero. */
  run(args: string[], opts?: { kubeconfig?: string; timeoutMs?: number }): Promise<HelmResult>;
  /** Writes values to a file helm reads with `-f` (JSON is YAML). */
  valuesFile(name: string, values: Record<string, unknown>): Promise<string>;
  /** `helm template`: the chart's objects (tests and other hooks included) for one release and value set. */
  render(release: string, namespace: string, values?: Record<string, unknown>, extraArgs?: string[]): Promise<KubernetesObject[]>;
}

/** Builds (or finds in the cache) the helm binary and returns a runner isolated under `workDir`. */
export async function setupHelm(workDir: string): Promise<Helm> {
  const binary = join(await buildPeers('helm'), 'bin', 'helm');
  const home = join(workDir, 'helm-home');
  await mkdir(home, { recursive: true });
  const env = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: home,
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_DATA_HOME: join(home, 'data'),
  };
  let files = 0;
  const helm: Helm = {
    binary,
    async run(args, opts = {}) {
      try {
        const { stdout, stderr } = await execFileAsync(binary, args, {
          env: { ...env, ...(opts.kubeconfig ? { KUBECONFIG: opts.kubeconfig } : {}) },
          timeout: opts.timeoutMs ?? 120_000,
          maxBuffer: 32 * 1024 * 1024,
        });
        return { stdout, stderr };
      } catch (err: unknown) {
        const e = err as { stdout?: string; stderr?: string; code?: number | string };
        throw new HelmError(args, e.stdout ?? '', e.stderr ?? String(err), e.code);
      }
    },
    async valuesFile(name, values) {
      const file = join(home, `values-${++files}-${name}.json`);
      await writeFile(file, JSON.stringify(values, null, 2));
      return file;
    },
    async render(release, namespace, values = {}, extraArgs = []) {
      const file = await helm.valuesFile(release, values);
      const { stdout } = await helm.run(['template', release, CHART_DIR, '--namespace', namespace, '-f', file, ...extraArgs]);
      return parseManifests(stdout);
    },
  };
  return helm;
}

/** The objects of a multi-document YAML stream (empty documents, e.g. of disabled templates, left out). */
export function parseManifests(yaml: string): KubernetesObject[] {
  return parseAllDocuments(yaml)
    .map((doc) => {
      if (doc.errors.length) throw new Error(`invalid YAML from helm: ${doc.errors[0]?.message}`);
      return doc.toJS() as KubernetesObject | null;
    })
    .filter((obj): obj is KubernetesObject => obj !== null && typeof obj === 'object');
}
