// The kubelet's runAsNonRoot rule (kubernetes v1.36 pkg/kubelet/kuberuntime/security_context_others.go), one row per
// branch of verifyRunAsNonRoot and of the runtime's reading of an image's USER.
import { describe, expect, it } from '@jest/globals';
import type { V1PodSecurityContext, V1SecurityContext } from '@kubernetes/client-node';
import { containerStartProblems, imageUser, verifyRunAsNonRoot } from '../env/kubelet-rules.js';

describe('imageUser (the runtime reading an image config User)', () => {
  it.each([
    ['', { uid: 0 }],
    [undefined, { uid: 0 }],
    ['0', { uid: 0 }],
    ['1000', { uid: 1000 }],
    ['1000:1000', { uid: 1000 }],
    ['65532:65532', { uid: 65532 }],
    ['node', { username: 'node' }],
    ['nonroot', { username: 'nonroot' }],
    ['nonroot:nonroot', { username: 'nonroot' }],
    ['1000a', { username: '1000a' }],
  ])('%j → %j', (user, expected) => {
    expect(imageUser(user)).toEqual(expected);
  });
});

describe('verifyRunAsNonRoot', () => {
  const spec = (pod: V1PodSecurityContext | undefined, container: V1SecurityContext | undefined) => ({
    pod: { containers: [], ...(pod ? { securityContext: pod } : {}) },
    container: { name: 'c', image: 'i', ...(container ? { securityContext: container } : {}) },
  });
  it.each<[string, V1PodSecurityContext | undefined, V1SecurityContext | undefined, string, string | undefined]>([
    ['no runAsNonRoot: anything starts', undefined, undefined, 'nonroot', undefined],
    ['runAsNonRoot false: anything starts', { runAsNonRoot: false }, undefined, '', undefined],
    ['pod runAsNonRoot, named image user: refused', { runAsNonRoot: true }, undefined, 'nonroot', 'non-numeric user (nonroot)'],
    ['pod runAsNonRoot, the node image user: refused', { runAsNonRoot: true }, undefined, 'node', 'non-numeric user (node)'],
    ['pod runAsNonRoot, numeric image user: starts', { runAsNonRoot: true }, undefined, '1000:1000', undefined],
    ['pod runAsNonRoot, image without user (root): refused', { runAsNonRoot: true }, undefined, '', 'will run as root'],
    ['pod runAsNonRoot, image user 0: refused', { runAsNonRoot: true }, undefined, '0', 'will run as root'],
    [
      'pod runAsNonRoot + container runAsUser: starts whatever the image says',
      { runAsNonRoot: true },
      { runAsUser: 65532 },
      'nonroot',
      undefined,
    ],
    ['pod runAsNonRoot + pod runAsUser: starts', { runAsNonRoot: true, runAsUser: 1000 }, undefined, 'node', undefined],
    ['container runAsUser 0 under runAsNonRoot: refused', { runAsNonRoot: true }, { runAsUser: 0 }, '1000', 'runAsUser 0'],
    ['container runAsUser wins over the pod', { runAsNonRoot: true, runAsUser: 0 }, { runAsUser: 1000 }, '', undefined],
    ['container runAsNonRoot alone: refused for a named user', undefined, { runAsNonRoot: true }, 'nonroot', 'non-numeric user'],
    ['container runAsNonRoot false overrides the pod', { runAsNonRoot: true }, { runAsNonRoot: false }, 'nonroot', undefined],
    ['image uid above int32: refused', { runAsNonRoot: true }, undefined, '4294967295', 'invalid user id'],
  ])('%s', (_name, podSc, containerSc, user, problem) => {
    const { pod, container } = spec(podSc, containerSc);
    const result = verifyRunAsNonRoot(pod, container, imageUser(user));
    if (problem === undefined) expect(result).toBeUndefined();
    else expect(result).toContain(problem);
  });
});

describe('containerStartProblems', () => {
  it('checks init containers and containers, and never passes an image it does not know', () => {
    const pod = {
      securityContext: { runAsNonRoot: true },
      initContainers: [{ name: 'init', image: 'named' }],
      containers: [
        { name: 'ok', image: 'numeric' },
        { name: 'unknown', image: 'other' },
      ],
    };
    const users: Record<string, string> = { named: 'nonroot', numeric: '1000' };
    expect(containerStartProblems(pod, (image) => users[image])).toEqual([
      expect.stringContaining('container init: runAsNonRoot and the image has a non-numeric user (nonroot)'),
      expect.stringContaining('container unknown: the USER of image other is not known'),
    ]);
  });
});
