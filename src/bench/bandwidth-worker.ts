// Child process: the machine's memory bandwidth with `threads` threads (see protocol.ts), in a process
// of its own so its large buffer never counts in an engine's peak memory. The native addon's
// multi-threaded streaming read is the measurement; the approximate JS one only stands in when the
// addon in use was built without it.
import { readBandwidthGBs, setThreads } from '../tensor/cpu-backend.js';
import { jsReadBandwidthGBs } from './bandwidth.js';
import { childMain, readJob } from './child.js';
import type { BandwidthResult } from './protocol.js';

await childMain(async (): Promise<BandwidthResult> => {
  const { threads } = await readJob<{ threads: number }>();
  setThreads(threads);
  let gbs: number | undefined;
  try {
    gbs = readBandwidthGBs();
  } catch (e) {
    process.stderr.write(`native bandwidth measurement unavailable (${(e as Error).message}); using the approximate JS one\n`);
  }
  if (gbs !== undefined && Number.isFinite(gbs) && gbs > 0) return { gbs, method: 'native', threads };
  return { gbs: await jsReadBandwidthGBs(threads), method: 'js-approx', threads };
});
