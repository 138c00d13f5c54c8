import { describe, expect, it } from '@jest/globals';
import { isLoopbackAddress, loadConfig } from '../../src/config.js';

describe('listening settings', () => {
  it('takes events on 127.0.0.1:8080 and answers probes on every interface, port 8082, by default', () => {
    expect(loadConfig({})).toMatchObject({ host: '127.0.0.1', port: 8080, healthHost: '0.0.0.0', healthPort: 8082 });
  });

  it.each([
    [{ HOST: '0.0.0.0' }, /HOST must be a loopback address.*"0\.0\.0\.0".*only the distributor in the same pod/],
    [{ HOST: '::' }, /HOST must be a loopback address/],
    [{ HOST: '10.0.0.7' }, /HOST must be a loopback address/],
    [{ HOST: 'localhost' }, /HOST must be a loopback address/],
    [{ HEALTH_PORT: '8080' }, /HEALTH_PORT must differ from PORT \(both 8080\)/],
    [{ HEALTH_PORT: '0' }, /HEALTH_PORT must be a port number, got "0"/],
    [{ HEALTH_HOST: 'everywhere' }, /HEALTH_HOST must be an IP address/],
  ])('refuses %j', (env, problem) => {
    expect(() => loadConfig(env)).toThrow(problem);
  });

  it('takes any loopback address for events', () => {
    expect(loadConfig({ HOST: '::1', PORT: '9000', HEALTH_PORT: '9001', HEALTH_HOST: '::' })).toMatchObject({
      host: '::1',
      port: 9000,
      healthHost: '::',
      healthPort: 9001,
    });
  });

  it.each([
    ['127.0.0.1', true],
    ['127.255.0.9', true],
    ['::1', true],
    ['0:0:0:0:0:0:0:1', true],
    ['::ffff:127.0.0.1', true],
    ['192.0.2.2', false],
    ['::ffff:192.0.2.2', false],
    ['fd00::2', false],
    ['::', false],
    ['', false],
    ['127.0.0.1.evil', false],
  ])('%s is loopback: %s', (address, loopback) => {
    expect(isLoopbackAddress(address)).toBe(loopback);
  });
});

describe('lifecycle and scope settings', () => {
  it('drains for 8 s and watches the whole cluster by default', () => {
    expect(loadConfig({})).toMatchObject({ drainMs: 8_000, watchNamespaces: [] });
  });

  it('lets 267 deployments start at once by default (one project: as many as one commit holds), and fewer or more when asked', () => {
    expect(loadConfig({}).maxStarting).toBe(267);
    expect(loadConfig({ MAX_STARTING: '8' }).maxStarting).toBe(8);
  });

  it('takes a list of namespaces for namespaced mode, once each', () => {
    expect(loadConfig({ WATCH_NAMESPACES: 'flux-system, argocd,flux-system,' }).watchNamespaces).toEqual(['flux-system', 'argocd']);
  });

  it.each([
    [{ WATCH_NAMESPACES: 'flux-system,Team_A' }, /WATCH_NAMESPACES must be a comma-separated list of namespace names, got "Team_A"/],
    [{ DRAIN_TIMEOUT: 'soon' }, /DRAIN_TIMEOUT must be a duration like 8s, got "soon"/],
    [{ MAX_STARTING: '3' }, /MAX_STARTING must be a whole number from 4 to 10000, got "3"/],
    [{ MAX_STARTING: 'many' }, /MAX_STARTING must be a whole number from 4 to 10000, got "many"/],
  ])('refuses %j', (env, problem) => {
    expect(() => loadConfig(env)).toThrow(problem);
  });
});

describe('Git settings (issue 19, items 5 and 8)', () => {
  it('keeps the clone cache under 1536Mi and reaches only public Git hosts by default', () => {
    expect(loadConfig({})).toMatchObject({ gitCacheLimitBytes: 1536 * 1024 ** 2, allowedGitHosts: [] });
  });

  it('takes a cache size as a Kubernetes quantity and internal hosts by name, once each', () => {
    expect(loadConfig({ GIT_CACHE_LIMIT: '1Gi', ALLOWED_GIT_HOSTS: 'gitea.gitea.svc, 127.0.0.1:3000,Gitea.gitea.svc' })).toMatchObject({
      gitCacheLimitBytes: 1024 ** 3,
      allowedGitHosts: ['gitea.gitea.svc', '127.0.0.1:3000'],
    });
  });

  it.each([
    [{ GIT_CACHE_LIMIT: 'lots' }, /GIT_CACHE_LIMIT must be a size of at least 1Mi like 1536Mi or 2Gi, got "lots"/],
    [{ GIT_CACHE_LIMIT: '100Ki' }, /GIT_CACHE_LIMIT must be a size of at least 1Mi/],
    [
      { ALLOWED_GIT_HOSTS: 'https://gitea' },
      /ALLOWED_GIT_HOSTS must list host or host:port entries \(or \*\), comma-separated, got "https:\/\/gitea"/,
    ],
  ])('refuses %j', (env, problem) => {
    expect(() => loadConfig(env)).toThrow(problem);
  });
});

describe('state settings', () => {
  it('keeps the state in STATE_NAMESPACE, and moves it from PREVIOUS_STATE_NAMESPACE only when that is another one', () => {
    expect(loadConfig({ STATE_NAMESPACE: 'keptn-gitops-service-state', PREVIOUS_STATE_NAMESPACE: 'keptn' })).toMatchObject({
      stateNamespace: 'keptn-gitops-service-state',
      previousStateNamespace: 'keptn',
    });
    expect(loadConfig({ STATE_NAMESPACE: 'keptn', PREVIOUS_STATE_NAMESPACE: 'keptn' }).previousStateNamespace).toBeUndefined();
    expect(loadConfig({ STATE_NAMESPACE: 'keptn', PREVIOUS_STATE_NAMESPACE: ' ' }).previousStateNamespace).toBeUndefined();
  });

  it.each([
    [{ STATE_NAMESPACE: 'Keptn State' }, /STATE_NAMESPACE must be a namespace name, got "Keptn State"/],
    [{ PREVIOUS_STATE_NAMESPACE: 'keptn/other' }, /PREVIOUS_STATE_NAMESPACE must be a namespace name, got "keptn\/other"/],
  ])('refuses %j', (env, problem) => {
    expect(() => loadConfig(env)).toThrow(problem);
  });
});
