/**
 * The tasks' public face, kept so that callers (main, release, tests) need not know how src/tasks/ is split: the
 * deployment task (tasks/deploy.ts), the rollback task (tasks/rollback.ts), and the steps the release task shares.
 */
export { changeAndWait, fileEdit, imageFrom } from './change.js';
export { deploy } from './deploy.js';
export { DeploymentError, type DeploymentDeps, type Prepared } from './deps.js';
export { prepare, repositoryOf } from './prepare.js';
export { followProgressive, progressiveOf, progressivePlan, progressiveReport } from './progressive-steps.js';
export { rollback } from './rollback.js';
