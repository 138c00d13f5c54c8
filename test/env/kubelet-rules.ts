// The kubelet's checks before it starts a container that admission does not make and kwok does not play: a pod the
// API server accepts can still never start (CreateContainerConfigError). Pure functions over a pod spec, mirroring
// kubernetes v1.36 pkg/kubelet/kuberuntime/security_context_others.go (verifyRunAsNonRoot) with
// pkg/securitycontext/util.go (DetermineEffectiveSecurityContext) and kuberuntime/helpers.go (getImageUser).
import type { V1Container, V1PodSpec } from '@kubernetes/client-node';

/** What the container runtime reports of an image's USER (CRI ImageStatus): a uid, or a name, never both. */
export interface ImageUser {
  uid?: number;
  username?: string;
}

const MAX_INT32 = 2 ** 31 - 1;

/**
 * An image config's `User` ("1000", "1000:1000", "node", "nonroot:nonroot", "") as the runtime reports it: the part
 * before ':' is a uid when it is a number, otherwise a user name; no user means root (uid 0).
 */
export function imageUser(user: string | undefined): ImageUser {
  const name = (user ?? '').split(':')[0] ?? '';
  if (name === '') return { uid: 0 };
  return /^[0-9]+$/.test(name) ? { uid: Number(name) } : { username: name };
}

/** The container's effective runAsNonRoot and runAsUser: the container's own setting wins over the pod's. */
function effective(pod: V1PodSpec, container: V1Container): { runAsNonRoot?: boolean; runAsUser?: number } {
  const podSc = pod.securityContext ?? {};
  const sc = container.securityContext ?? {};
  const runAsNonRoot = sc.runAsNonRoot ?? podSc.runAsNonRoot;
  const runAsUser = sc.runAsUser ?? podSc.runAsUser;
  return {
    ...(runAsNonRoot !== undefined && runAsNonRoot !== null ? { runAsNonRoot } : {}),
    ...(runAsUser !== undefined && runAsUser !== null ? { runAsUser } : {}),
  };
}

/** Why the kubelet would refuse to start this container under runAsNonRoot, or undefined when it would start it. */
export function verifyRunAsNonRoot(pod: V1PodSpec, container: V1Container, image: ImageUser): string | undefined {
  const sc = effective(pod, container);
  if (sc.runAsNonRoot !== true) return undefined;
  if (sc.runAsUser !== undefined) {
    return sc.runAsUser === 0 ? `container ${container.name}: runAsUser 0 breaks the non-root policy` : undefined;
  }
  if (image.uid === undefined && image.username) {
    return `container ${container.name}: runAsNonRoot and the image has a non-numeric user (${image.username}), cannot verify user is non-root`;
  }
  if (image.uid !== undefined) {
    if (image.uid === 0) return `container ${container.name}: runAsNonRoot and the image will run as root`;
    if (!Number.isInteger(image.uid) || image.uid < 0 || image.uid > MAX_INT32) {
      return `container ${container.name}: runAsNonRoot and the image has an invalid user id (${image.uid})`;
    }
  }
  return undefined;
}

/**
 * Every container (init containers included) the kubelet would refuse to start. `userOf` gives each image's USER
 * from its Dockerfile; an image it does not know is an error, never a pass.
 */
export function containerStartProblems(pod: V1PodSpec, userOf: (image: string) => string | undefined): string[] {
  const problems: string[] = [];
  for (const container of [...(pod.initContainers ?? []), ...pod.containers]) {
    const user = userOf(container.image ?? '');
    if (user === undefined) {
      problems.push(`container ${container.name}: the USER of image ${container.image} is not known to the check`);
      continue;
    }
    const problem = verifyRunAsNonRoot(pod, container, imageUser(user));
    if (problem) problems.push(problem);
  }
  return problems;
}
