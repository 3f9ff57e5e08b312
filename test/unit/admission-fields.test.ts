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
      gate: '',
      admitRate: '',
      admitPerUnit: '',
      admitTtl: '',
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
      gate: 'aq|0.5|4',
      admitRate: '',
      admitPerUnit: '1.5',
      admitTtl: '120',
    });
  });

  it('the gate packs what a purchase needs: passes, then the SKU’s own buyer and client limits', () => {
    const gate = (input: Parameters<typeof admissionSettings>[0]) =>
      hash(admissionHashFields(admissionSettings(input))).gate;
    assert.equal(gate({ waitingRoom: { admissionsPerSecond: 5 } }), 'a||');
    assert.equal(gate({ qualificationRequired: true }), 'q||');
    assert.equal(gate({ rateLimit: { buyerPerSecond: 2, buyerBurst: 3 } }), '|2|3');
    // Three parts unless the SKU limits client addresses (what older engines read); five then.
    assert.equal(gate({ rateLimit: { clientPerSecond: 0, clientBurst: 1 } }), '|||0|1');
    assert.equal(
      gate({
        qualificationRequired: true,
        rateLimit: { buyerPerSecond: 2, buyerBurst: 3, clientPerSecond: 20, clientBurst: 60 },
      }),
      'q|2|3|20|60',
    );
    assert.equal(gate({ qualificationRequired: false, rateLimit: null }), '');
    // A pair given half, or none, is no limit of the SKU's (the API refuses both with 400).
    assert.equal(gate({ rateLimit: { clientPerSecond: 5 } }), '');
  });

  it('columns and back give the same settings; sameness sees every part', () => {
    const s = admissionSettings({
      waitingRoom: { admissionsPerSecond: 25, admissionTtlSeconds: 60 },
      rateLimit: { buyerPerSecond: 2, buyerBurst: 3 },
    });
    assert.deepEqual(admissionFromRow(admissionColumns(s)), s);
    const client = admissionSettings({ rateLimit: { clientPerSecond: 0.5, clientBurst: 9 } });
    assert.deepEqual(admissionFromRow(admissionColumns(client)), client);
    assert.deepEqual(client.rateLimit, { clientPerSecond: 0.5, clientBurst: 9 });
    assert.deepEqual(
      admissionFromRow(admissionColumns(NO_ADMISSION_CONTROL)),
      NO_ADMISSION_CONTROL,
    );
    assert.ok(sameAdmission(s, admissionFromRow(admissionColumns(s))));
    for (const other of [
      { ...s, qualificationRequired: true },
      { ...s, waitingRoom: null },
      { ...s, rateLimit: null },
      { ...s, rateLimit: { ...s.rateLimit, clientPerSecond: 1, clientBurst: 1 } },
      { ...s, waitingRoom: { ...s.waitingRoom!, admissionTtlSeconds: 61 } },
    ])
      assert.ok(!sameAdmission(s, other), JSON.stringify(other));
  });
});
