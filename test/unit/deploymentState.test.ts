// The deployment state machine (src/server/deployments/stateMachine.ts): what an app's report says
// of a release's deployment, which moves a deployment may make, and what a newer target supersedes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  DEPLOYMENT_STATES,
  blockedFrom,
  deploymentUpdate,
  mayMove,
  nextDeployment,
  supersedingRelease,
  type AppDeploymentReport,
  type DeploymentState,
} from '../../src/server/deployments/stateMachine.js';

const running = { web: { error: null } };
const crashed = { web: { error: 'exited with code 1, restarted 3 times; last lines:\nboom' } };

describe('deploymentUpdate', () => {
  test('an applied release: applying while it settles, succeeded once settled, failed with the reason when a service crashed', () => {
    const applied: AppDeploymentReport = { releaseId: 5, targetReleaseId: 5, updateStatus: 'done', services: running };
    assert.deepEqual(deploymentUpdate({ ...applied, settle: 'settling' }, 5), { releaseId: 5, state: 'applying', error: null });
    assert.deepEqual(deploymentUpdate({ ...applied, settle: 'settled' }, 5), { releaseId: 5, state: 'succeeded', error: null });
    assert.deepEqual(deploymentUpdate({ ...applied, settle: 'failed', services: crashed }, 5), {
      releaseId: 5,
      state: 'failed',
      error: 'web: exited with code 1, restarted 3 times; last lines:\nboom',
    });
    assert.deepEqual(deploymentUpdate({ ...applied, settle: 'failed' }, 5), { releaseId: 5, state: 'failed', error: 'its services did not settle' });
  });

  test("an agent that does not report settling: its 'done' is a success (as before)", () => {
    assert.deepEqual(deploymentUpdate({ releaseId: 5, updateStatus: 'done' }, 5), { releaseId: 5, state: 'succeeded', error: null });
    assert.deepEqual(deploymentUpdate({ releaseId: 5, updateStatus: 'done', settle: null }, 5), { releaseId: 5, state: 'succeeded', error: null });
  });

  test('on the way to a release: its own target, else the server’s; errors and aborts fail it', () => {
    assert.deepEqual(deploymentUpdate({ releaseId: 4, targetReleaseId: 5, updateStatus: 'downloading' }, 6), {
      releaseId: 5,
      state: 'downloading',
      error: null,
    });
    assert.deepEqual(deploymentUpdate({ releaseId: 4, targetReleaseId: null, updateStatus: 'downloaded' }, 6), {
      releaseId: 6,
      state: 'downloading',
      error: null,
    });
    assert.deepEqual(deploymentUpdate({ releaseId: 4, targetReleaseId: 5, updateStatus: 'applying changes' }, 5), {
      releaseId: 5,
      state: 'applying',
      error: null,
    });
    assert.deepEqual(deploymentUpdate({ releaseId: 4, targetReleaseId: 5, updateStatus: 'aborted' }, 5), {
      releaseId: 5,
      state: 'failed',
      error: 'the update was aborted',
    });
    assert.deepEqual(
      deploymentUpdate(
        { releaseId: 4, targetReleaseId: 5, updateStatus: 'applying changes', services: { a: { error: 'no such image' }, b: { error: null } } },
        5,
      ),
      {
        releaseId: 5,
        state: 'failed',
        error: 'a: no such image',
      },
    );
    assert.equal(deploymentUpdate({ releaseId: null, targetReleaseId: null, updateStatus: 'downloading' }, undefined), undefined, 'no release to speak of');
  });

  test('a long error is cut', () => {
    const update = deploymentUpdate({ targetReleaseId: 5, updateStatus: 'aborted', services: { a: { error: 'x'.repeat(5000) } } }, 5);
    assert.equal(update?.error?.length, 4000);
    assert.ok(update?.error?.endsWith('…'));
  });
});

describe('mayMove', () => {
  const all = DEPLOYMENT_STATES;
  const moves = (from: DeploymentState) => all.filter((to) => to !== from && mayMove(from, to));

  test('a success is final', () => assert.deepEqual(moves('succeeded'), []));
  test('a failure moves only to a success (and to itself, with another error)', () => {
    assert.deepEqual(moves('failed'), ['succeeded']);
    assert.equal(mayMove('failed', 'failed'), true);
  });
  test('under way: anywhere on (never back to pending)', () => {
    assert.deepEqual(moves('pending'), ['downloading', 'applying', 'succeeded', 'failed', 'superseded']);
    assert.deepEqual(moves('downloading'), ['applying', 'succeeded', 'failed', 'superseded']);
    assert.deepEqual(moves('applying'), ['downloading', 'succeeded', 'failed', 'superseded']);
  });
  test('superseded: only when the device reports on that release again', () => {
    assert.deepEqual(moves('superseded'), ['downloading', 'applying', 'succeeded', 'failed']);
  });
  test('blockedFrom lists the states a guarded update must not touch, and is never empty', () => {
    for (const to of all) {
      assert.deepEqual(
        blockedFrom(to),
        all.filter((from) => !mayMove(from, to)),
      );
      assert.ok(blockedFrom(to).includes('succeeded'));
    }
  });
});

describe('nextDeployment', () => {
  test('a crash-looping release fails with the reason; a settle after all flips it to succeeded; nothing moves a success', () => {
    const failed = nextDeployment({ state: 'applying', error: null }, { releaseId: 1, state: 'failed', error: 'web: exited with code 1' });
    assert.deepEqual(failed, { state: 'failed', error: 'web: exited with code 1', finished: true });
    assert.equal(
      nextDeployment({ state: 'failed', error: 'web: exited with code 1' }, { releaseId: 1, state: 'applying', error: null }),
      undefined,
      'settling again does not hide the failure',
    );
    assert.deepEqual(
      nextDeployment(
        { state: 'failed', error: 'web: exited with code 1' },
        { releaseId: 1, state: 'failed', error: 'web: exited with code 1, restarted 2 times' },
      ),
      {
        state: 'failed',
        error: 'web: exited with code 1, restarted 2 times',
        finished: true,
      },
    );
    assert.equal(
      nextDeployment({ state: 'failed', error: 'x' }, { releaseId: 1, state: 'failed', error: 'x' }),
      undefined,
      'the same failure again changes nothing',
    );
    assert.deepEqual(nextDeployment({ state: 'failed', error: 'x' }, { releaseId: 1, state: 'succeeded', error: null }), {
      state: 'succeeded',
      error: null,
      finished: true,
    });
    assert.equal(nextDeployment({ state: 'succeeded', error: null }, { releaseId: 1, state: 'failed', error: 'x' }), undefined);
  });

  test('a new deployment record starts where the report says; only ends set finished', () => {
    assert.deepEqual(nextDeployment(undefined, { releaseId: 1, state: 'applying', error: null }), { state: 'applying', error: null, finished: false });
    assert.deepEqual(nextDeployment(undefined, { releaseId: 1, state: 'succeeded', error: null }), { state: 'succeeded', error: null, finished: true });
  });
});

describe('supersedingRelease', () => {
  test("the device's own target, else the server's", () => {
    assert.equal(supersedingRelease({ targetReleaseId: 7 }, 8), 7, 'a device that has not fetched release 8 yet leaves it alone');
    assert.equal(supersedingRelease({ targetReleaseId: null }, 8), 8);
    assert.equal(supersedingRelease({}, undefined), undefined);
  });
});
