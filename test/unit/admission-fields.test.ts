// A SKU's admission settings in their three shapes (what an operator sends, the `skus`
// columns, the Redis hash fields the scripts read) map onto each other without loss.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  admissionColumns,
  admissionFromRow,
  admissionHashFields,
  admissionSettings,
  DEFAULT_ADMISSION_TTL_SECONDS,
  NO_ADMISSION_CONTROL,
  sameAdmission,
} from '../../src/inventory/admission-fields.js';

const hash = (fields: string[]) =>
  Object.fromEntries(
    Array.from({ length: fields.length / 2 }, (_, i) => [fields[2 * i], fields[2 * i + 1]]),
  );

describe('admission settings', () => {
  it('nothing sent: no waiting room, no qualification, the deployment’s rate limit', () => {
    assert.deepEqual(admissionSettings({}), NO_ADMISSION_CONTROL);
    assert.deepEqual(
      admissionSettings({ waitingRoom: null, rateLimit: null }),
      NO_ADMISSION_CONTROL,
    );
    // Off is absent: a SKU without admission control keeps the hash it always had.
    assert.deepEqual(hash(admissionHashFields(NO_ADMISSION_CONTROL)), {
      queue: '',
      admitRate: '',
      admitPerUnit: '',
      admitTtl: '',
      qualify: '',
      buyerRate: '',
      buyerBurst: '',
    });
  });

  it('a waiting room gets the default admission TTL; every field reaches the hash', () => {
    const s = admissionSettings({
      waitingRoom: { admissionsPerUnitLeft: 1.5 },
      qualificationRequired: true,
      rateLimit: { buyerPerSecond: 0.5, buyerBurst: 4 },
    });
    assert.deepEqual(s.waitingRoom, {
      admissionsPerSecond: null,
      admissionsPerUnitLeft: 1.5,
      admissionTtlSeconds: DEFAULT_ADMISSION_TTL_SECONDS,
    });
    assert.deepEqual(hash(admissionHashFields(s)), {
      queue: '1',
      admitRate: '',
      admitPerUnit: '1.5',
      admitTtl: '120',
      qualify: '1',
      buyerRate: '0.5',
      buyerBurst: '4',
    });
  });

  it('columns and back give the same settings; sameness sees every part', () => {
    const s = admissionSettings({
      waitingRoom: { admissionsPerSecond: 25, admissionTtlSeconds: 60 },
      rateLimit: { buyerPerSecond: 2, buyerBurst: 3 },
    });
    assert.deepEqual(admissionFromRow(admissionColumns(s)), s);
    assert.deepEqual(
      admissionFromRow(admissionColumns(NO_ADMISSION_CONTROL)),
      NO_ADMISSION_CONTROL,
    );
    assert.ok(sameAdmission(s, admissionFromRow(admissionColumns(s))));
    for (const other of [
      { ...s, qualificationRequired: true },
      { ...s, waitingRoom: null },
      { ...s, rateLimit: null },
      { ...s, waitingRoom: { ...s.waitingRoom!, admissionTtlSeconds: 61 } },
    ])
      assert.ok(!sameAdmission(s, other), JSON.stringify(other));
  });
});
