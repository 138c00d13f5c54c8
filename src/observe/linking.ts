/**
 * The observer's linking: which Keptn service an object it sees speaks for (link.ts decides), and a problem with an
 * object's link logged once per change of the problem, not at every change of the object.
 */
import type { Logger } from 'pino';
import { linkOf, type LinkHint, type ObservedKind } from './link.js';

export class Links {
  private readonly problems = new Map<string, string>();

  constructor(private readonly log: Logger) {}

  /** The service the object's annotations name (a hint: the project's settings decide, ADR 16), or undefined when it is not observed (not linked, or its link has a problem). */
  of(kind: ObservedKind, namespace: string, name: string, annotations: Record<string, string> | undefined): LinkHint | undefined {
    const object = `${kind} ${namespace}/${name}`;
    const linked = linkOf(kind, namespace, name, annotations);
    if (!linked) return undefined;
    if ('problem' in linked) {
      if (this.problems.get(object) !== linked.problem) this.log.warn({ object, problem: linked.problem }, 'object not observed');
      this.problems.set(object, linked.problem);
      return undefined;
    }
    this.problems.delete(object);
    return linked.link;
  }
}
