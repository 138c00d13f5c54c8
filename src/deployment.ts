/**
 * The tasks' public face, kept so that callers (main, release, tests) need not know how src/tasks/ is split: the
 * deployment task (tasks/deploy.ts), the rollback task (tasks/rollback.ts), and the steps the release task shares.
 */
export { changeAndWait, fileEdit, imageFrom } from './tasks/change.js';
export { deploy } from './tasks/deploy.js';
export { DeploymentError, type DeploymentDeps, type Prepared } from './tasks/deps.js';
export { prepare, repositoryOf } from './tasks/prepare.js';
export { followProgressive, progressiveOf, progressivePlan, progressiveReport } from './tasks/progressive-steps.js';
export { rollback } from './tasks/rollback.js';
