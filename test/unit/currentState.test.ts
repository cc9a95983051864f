// The current state as users see it is built from the plan too: an app is `done` only when its
// release is recorded and nothing of it is planned, and a service says why its change waits.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { plan } from '../../src/agent/reconciler/plan.js';
import { reportCurrentState, type ActivityFacts } from '../../src/agent/state/currentState.js';
import { stateStatus } from '../../src/agent/state/deviceReports.js';
import { NOW, app, context, convergedState, desired, target } from './helpers/planFixtures.js';

const release = (environment: Record<string, string>) =>
  desired(target({ 1: app({ web: { image: 'nginx:1.25', environment }, db: { image: 'postgres:16' } }, { id: 7 }) }));
const facts = (planned: ActivityFacts['planned']): ActivityFacts => ({
  phase: () => undefined,
  progress: () => null,
  error: () => undefined,
  applied: new Map([[1, { releaseId: 7, commit: 'c0ffee' }]]),
  planned,
});

test('a changed service held back by the app’s lock keeps the app applying, and says so', () => {
  const running = convergedState(release({ V: '1' }));
  const changed = release({ V: '2' });
  const steps = plan(running, changed, context({ appliedReleases: new Map([[1, 7]]), lockBackoff: new Map([[1, NOW + 4_000]]) }));
  const report = reportCurrentState(running, changed, facts(steps))['1']!;
  assert.equal(report.releaseId, 7, 'the release stays recorded as applied');
  assert.equal(report.updateStatus, 'applying changes');
  assert.equal(report.services.web!.status, 'Running');
  assert.equal(report.services.web!.waiting, 'web waits: updates are locked by app 1; retrying in 4 s');
  assert.equal(report.services.db!.waiting, null);
  assert.equal(stateStatus([report], false).appState, 'applying');

  const converged = reportCurrentState(convergedState(changed), changed, facts([]))['1']!;
  assert.equal(converged.updateStatus, 'done');
  assert.equal(converged.services.web!.waiting, null);
  assert.equal(stateStatus([converged], false).appState, 'applied');
});

test('steps of another app or image cleanup do not keep an app from done', () => {
  const d = release({ V: '1' });
  const report = reportCurrentState(
    convergedState(d),
    d,
    facts([
      { action: 'removeImage', ref: 'library/old:1', imageId: 'sha256:old' },
      { action: 'noop', appId: 2, serviceName: 'web', reason: 'downloading library/x:1', retryAt: 0 },
    ]),
  )['1']!;
  assert.equal(report.updateStatus, 'done');
  assert.equal(report.services.web!.waiting, null);
});
