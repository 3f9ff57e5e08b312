// The durability promise read from Redis's persistence settings (pure part).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/shared/config.js';
import { assess, evicts, promiseOf, satisfies } from '../../src/clients/redis-durability.js';

describe('durability promise', () => {
  it('maps AOF settings to the promise they give', () => {
    assert.equal(promiseOf({ appendonly: 'yes', appendfsync: 'always' }), 'always');
    assert.equal(promiseOf({ appendonly: 'yes', appendfsync: 'everysec' }), 'everysec');
    assert.equal(promiseOf({ appendonly: 'yes', appendfsync: 'no' }), 'none');
    assert.equal(promiseOf({ appendonly: 'no', appendfsync: 'always' }), 'none');
  });

  it('a stronger promise satisfies a weaker requirement, unknown only satisfies none', () => {
    assert.ok(satisfies('always', 'everysec'));
    assert.ok(satisfies('everysec', 'everysec'));
    assert.ok(!satisfies('everysec', 'always'));
    assert.ok(!satisfies('none', 'everysec'));
    assert.ok(!satisfies('unknown', 'everysec'));
    assert.ok(satisfies('unknown', 'none'));
  });

  it('a cluster promises what its weakest master promises; one silent master makes it unknown', () => {
    const a = { node: 'a:1', appendonly: 'yes', appendfsync: 'always' };
    const b = { node: 'b:2', appendonly: 'yes', appendfsync: 'everysec' };
    assert.equal(assess([a, b], 'always').actual, 'everysec');
    assert.equal(assess([a, b], 'always').ok, false);
    assert.equal(assess([a, b], 'everysec').ok, true);
    const silent = { node: 'c:3', error: 'CONFIG refused: ERR unknown command' };
    assert.equal(assess([a, silent, b], 'everysec').actual, 'unknown');
    assert.equal(assess([], 'none').actual, 'unknown');
    assert.match(assess([a, b], 'always').redis, /b:2 appendonly=yes appendfsync=everysec/);
  });

  it('a master that may evict keys fails the check whatever the promise', () => {
    const a = { node: 'a:1', appendonly: 'yes', appendfsync: 'always' };
    const capped = { ...a, maxmemory: '268435456', maxmemoryPolicy: 'noeviction' };
    const cache = { ...a, node: 'b:2', maxmemory: '268435456', maxmemoryPolicy: 'allkeys-lru' };
    const unlimited = { ...cache, maxmemory: '0' };
    assert.ok(!evicts(a) && !evicts(capped) && !evicts(unlimited) && evicts(cache));
    assert.equal(assess([a, capped, unlimited], 'always').ok, true);
    const report = assess([a, cache], 'none');
    assert.equal(report.actual, 'always');
    assert.equal(report.evicting, true);
    assert.equal(report.ok, false);
    assert.match(
      report.redis,
      /b:2 appendonly=yes appendfsync=always maxmemory=268435456 maxmemory-policy=allkeys-lru/,
    );
  });

  it('REDIS_DURABILITY is validated, everysec by default', () => {
    assert.equal(loadConfig({ NODE_ENV: 'test' }).REDIS_DURABILITY, 'everysec');
    assert.equal(
      loadConfig({ NODE_ENV: 'test', REDIS_DURABILITY: 'always' }).REDIS_DURABILITY,
      'always',
    );
    assert.throws(
      () => loadConfig({ NODE_ENV: 'test', REDIS_DURABILITY: 'sometimes' }),
      /REDIS_DURABILITY/,
    );
  });
});
