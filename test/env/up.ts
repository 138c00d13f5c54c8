// `npm run env:up`: the real test environment for working by hand. Starts every peer and the service, prints where
// each one listens, and stops them all on Ctrl-C (the peers also die with this process, see process.ts).
import { startEnvironment } from './environment.js';

const env = await startEnvironment({ flux: true, argocd: true });
console.log(`Environment up. Ctrl-C stops it.
  KUBECONFIG=${env.kube.kubeconfigPath}
  Git server:        ${env.git.url}/<repo>.git  (user ${env.git.username}; password in the Secret the samples create)
  NATS:              ${env.nats.url}
  distributor API:   ${env.distributor?.apiUrl ?? '(none)'}
  service events:    ${env.service ? `http://127.0.0.1:${env.service.port}/` : '(none)'}
  logs:              ${env.logDir}`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (stopping) return;
    stopping = true;
    console.log('stopping...');
    void env.stop().then(() => process.exit(0));
  });
}
