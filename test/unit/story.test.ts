// A printed command list must replay as the same commands: what `--story` runs is what failed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { commandArbitrary, parseStory } from '../model/driver.js';

describe('model stories', () => {
  it('every command list the model can draw reads back as the same commands', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(...commandArbitrary()), { maxLength: 30 }), (cmds) => {
        const printed = `[${cmds.map(String).join(',')}] /*replayPath="AAA:1"*/`;
        assert.deepEqual(parseStory(printed).map(String), cmds.map(String));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses what it cannot read, rather than replaying something else', () => {
    assert.throws(() => parseStory('[buy(u1, s0, qty 1, stolen key)]'), /not a command: buy/);
    assert.throws(() => parseStory('[wait(600 ms),oops]'), /not a command list: oops/);
    assert.throws(() => parseStory('[createSku(s0, stock 3)]'), /not a command: createSku/);
    assert.throws(() => parseStory('[nemesis(kill-everything)]'), /not a command: nemesis/);
  });
});
