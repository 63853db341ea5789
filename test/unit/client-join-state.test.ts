import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scriptedRoom, state } from '../helpers/scripted-room.ts';

for (const offered of [true, false]) {
  test(`join asks for the state in the ack only when the connection's server offers join.stateEvent (offered: ${offered})`, async () => {
    const h = scriptedRoom({ 'room:join': () => ({ ...state(3), self: null }) });
    (h.host as { serverOffers?: (f: string) => boolean }).serverOffers = (f) => offered && f === 'join.stateEvent';
    h.room.resume();
    await h.room.ready();
    const join = h.calls.find((c) => c.event === 'room:join')!;
    if (offered) assert.equal(join.payload.stateEvent, false);
    else assert.equal('stateEvent' in join.payload, false, 'an older server (no features) would refuse the unknown field');
    assert.equal(h.room.seq, 3);
  });
}
